// kvwb report: one self-contained HTML report (and a PDF of the same content) of a capture with a
// configuration's run, or with a sweep store's frontier and a chosen cell (docs/reports.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <set>

#include "app/cli/cli_common.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "sessions/report/report.h"

namespace kvwb::app {

namespace {

struct ReportArgs {
  std::string capture;
  RunFlags flags;
  std::string store, bundle, html_out, pdf_out;
  std::optional<int64_t> cell;
  std::vector<std::string> metrics;
  bool no_analysis = false, quiet = false;
};

/// The options of `kvwb report` itself; every other option given is a run-configuration flag.
const std::set<std::string>& own_options() {
  static const std::set<std::string> s = {"capture",  "--store", "--cell", "--metric",
                                          "--bundle", "--out",   "--pdf",  "--no-analysis",
                                          "--quiet",  "--help"};
  return s;
}

std::string quoted(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\"'$\\") == std::string::npos) return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

/// The command line as given (options in declaration order), for the report's provenance.
std::string command_line(const CLI::App& cmd) {
  std::string line = "kvwb report";
  for (const CLI::Option* o : cmd.get_options()) {
    if (o->count() == 0) continue;
    const bool positional = o->get_positional() && o->get_name().rfind("-", 0) != 0;
    if (!positional) line.append(" ").append(o->get_name(false, false));
    if (o->get_expected_min() > 0 || positional)
      for (const auto& r : o->results()) line.append(" ").append(quoted(r));
  }
  return line;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec) &&
         std::filesystem::equivalent(a, b, ec);
}

void run(const ReportArgs& a, const CLI::App& cmd) {
  if (a.html_out.empty() && a.pdf_out.empty())
    throw InvalidArgument("kvwb report needs --out FILE.html and/or --pdf FILE.pdf");
  if (!a.html_out.empty() && a.html_out == a.pdf_out)
    throw InvalidArgument("--out and --pdf name the same file");
  for (const std::string* out : {&a.html_out, &a.pdf_out})
    for (const std::string* in : {&a.capture, &a.flags.config_file, &a.store})
      if (!out->empty() && !in->empty() && same_file(*out, *in))
        throw InvalidArgument("kvwb report would write over its input " + *in);

  // Fail before the long part when an output folder is missing.
  for (const std::string* out : {&a.html_out, &a.pdf_out}) {
    if (out->empty()) continue;
    const auto parent = std::filesystem::path(*out).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent))
      throw IoError(*out, "the folder " + parent.string() + " does not exist");
  }

  sessions::ReportRequest req;
  req.capture_path = a.capture;
  req.store_dir = a.store;
  req.cell = a.cell;
  req.metrics = a.metrics;
  req.bundle_dir = a.bundle;
  req.analysis = !a.no_analysis;
  req.generated_by = command_line(cmd);
  if (a.store.empty()) {
    req.config = build_run_config(a.flags);
    req.threads = req.config->threads;
  } else {
    std::vector<std::string> given;
    for (const CLI::Option* o : cmd.get_options())
      if (o->count() > 0 && !own_options().count(o->get_name(false, false)) &&
          !own_options().count(o->get_name()))
        given.push_back(o->get_name(false, false));
    if (!given.empty()) {
      std::string list;
      for (const auto& g : given) list.append(list.empty() ? "" : ", ").append(g);
      throw InvalidArgument(
          "kvwb report --store details a stored sweep cell (--cell N); configuration flags (" +
          list + ") apply only without --store");
    }
    if (a.flags.threads) req.threads = *a.flags.threads;
  }
  if (!a.metrics.empty() && a.store.empty())
    throw InvalidArgument("--metric needs --store (it picks the Pareto axes)");

  sessions::ReportInputs in;
  {
    TerminalJob job("kvwb report");
    in = sessions::compute_report_inputs(req, &job.control());
  }
  const auto doc = sessions::build_report_document(in);
  sessions::write_report(doc, a.html_out, a.pdf_out);
  if (!a.quiet) {
    if (!a.html_out.empty())
      std::printf("report: %s (%llu bytes)\n", a.html_out.c_str(),
                  static_cast<unsigned long long>(std::filesystem::file_size(a.html_out)));
    if (!a.pdf_out.empty())
      std::printf("report: %s (%llu bytes)\n", a.pdf_out.c_str(),
                  static_cast<unsigned long long>(std::filesystem::file_size(a.pdf_out)));
    if (in.run.is_object() && in.run.contains("ratio_vs_bf16"))
      std::printf("ratio vs bf16 %.4f (config %s)\n", in.run["ratio_vs_bf16"].get<double>(),
                  in.run.value("config_hash", std::string("?")).substr(0, 12).c_str());
  }
  if (in.run.is_object() && in.run.value("failed", false))
    std::fprintf(
        stderr,
        "warning: some layer-streams failed; the report shows which (their metrics are absent)\n");
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd =
      app.add_subcommand("report",
                         "Write a self-contained HTML report (and a PDF) of a capture: identity, "
                         "configuration, totals, per-layer results, analysis charts, a sweep's "
                         "Pareto frontier, a bundle check");
  add_capture_arg(*cmd, args->capture);
  add_run_flags(*cmd, args->flags);
  cmd->add_option("--store", args->store,
                  "Sweep result store: Pareto frontier, all cells, and one cell's details "
                  "(instead of running a configuration)")->each(protect_input_value);
  cmd->add_option("--cell", args->cell,
                  "Store cell to detail (default: a balanced frontier point, see docs/reports.md)");
  cmd->add_option("--metric", args->metrics,
                  "Pareto quality metric (repeatable; default attn_out_rel_err, plus "
                  "e2e.abs_delta_ppl when the store has end-to-end totals)");
  cmd->add_option("--bundle", args->bundle,
                  "Bundle folder to check (default: the store's calibration bundle, if any)")->each(protect_input_value);
  cmd->add_option("--out", args->html_out, "Write the HTML report here (atomic)");
  cmd->add_option("--pdf", args->pdf_out, "Write the PDF report here (atomic)");
  cmd->add_flag("--no-analysis", args->no_analysis,
                "Leave out the capture analysis (spectra, d_eff, Σ_q, kurtosis)");
  cmd->add_flag("--quiet,-q", args->quiet, "Print nothing on success");
  cmd->callback([args, cmd] { run(*args, *cmd); });
}

}  // namespace kvwb::app
