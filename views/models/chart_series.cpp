#include "views/models/chart_series.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace kvwb::views {

namespace {

std::string number(double v) {
  if (std::isnan(v)) return {};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string quoted(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string series_csv(const std::string& x_name, const std::string& y_name,
                       const std::vector<PlotSeries>& series) {
  std::string out;
  size_t points = 0;
  for (const PlotSeries& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      out += quoted(s.name) + ',' + number(s.x[i]) + ',' + number(s.y[i]) + '\n';
      ++points;
    }
  }
  if (points == 0) return {};
  return "series," + quoted(x_name) + ',' + quoted(y_name) + '\n' + out;
}

std::string chart_title(const std::string& chart, const CaptureSummary& capture,
                        const std::string& where) {
  std::string parts;
  auto add = [&parts](const std::string& p) {
    if (p.empty()) return;
    parts += parts.empty() ? p : " · " + p;
  };
  if (!capture.path.empty()) add(std::filesystem::path(capture.path).filename().string());
  add(where);
  if (!capture.path.empty() && capture.synthetic) add("SYNTHETIC");
  return parts.empty() ? chart : chart + " — " + parts;
}

std::string waiting_note(const Snapshot& snapshot, const std::string& what) {
  if (snapshot.capture.path.empty()) return "No capture open.";
  std::string title = what;
  if (!title.empty())
    title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
  if (!snapshot.running_jobs.empty()) return title + " running…";
  return "No " + what + " yet" +
         (what == "run" ? " (press Run to evaluate the configuration)." : ".");
}

std::string run_state_note(const Snapshot& snapshot) {
  if (!snapshot.run) return "";
  if (snapshot.run_partial)
    return "PARTIAL run (cancelled): only the layers finished before the cancel.";
  if (snapshot.run_is_current) return "";
  return snapshot.run_in_flight ? "A rerun is in progress: this is the previous run."
                                : "Stale: the configuration changed since this run (F5 runs it).";
}

std::vector<PlotSeries> concat_series(std::vector<PlotSeries> a, std::vector<PlotSeries> b) {
  for (PlotSeries& s : b) a.push_back(std::move(s));
  return a;
}

}  // namespace kvwb::views
