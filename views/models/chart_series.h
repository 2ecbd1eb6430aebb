#pragma once
// Plain data behind the analysis charts (no widgets): a named (x, y) series exactly as a chart
// plots it, the CSV of a list of series, and the title pieces every chart shows (capture file
// name, SYNTHETIC). The chart models (spectrum, Σ_q, distribution, layer error) build these from a
// Snapshot; the views draw them and write them as CSV, so the CSV is the plotted data.
#include <string>
#include <vector>

#include "views/models/snapshot.h"

namespace kvwb::views {

/// One plotted series. `y` may hold NaN where a series marks a position only (a vertical line at
/// x, a marker on the axis); those cells are empty in the CSV.
struct PlotSeries {
  std::string name;  // legend text, also the CSV "series" column
  std::vector<double> x, y;
};

/// CSV text: header "series,<x_name>,<y_name>", then one row per point of every series in order.
/// Numbers in %.17g (round-trip exact), NaN as an empty cell; names quoted when they need it.
/// Empty string when there are no points.
std::string series_csv(const std::string& x_name, const std::string& y_name,
                       const std::vector<PlotSeries>& series);

/// `a` followed by `b` (the panels of a chart in one list, e.g. for its CSV).
std::vector<PlotSeries> concat_series(std::vector<PlotSeries> a, std::vector<PlotSeries> b);

/// The field `key` (a layer or kv-head number) of every item of `items`, in order.
template <class Item>
std::vector<int> keys_of(const std::vector<Item>& items, int Item::*key) {
  std::vector<int> out;
  out.reserve(items.size());
  for (const Item& it : items) out.push_back(it.*key);
  return out;
}

/// The item of `items` whose field `key` equals `value` (the last such), else the first item: the
/// layer or kv head a chart shows when the asked one is absent. `items` must not be empty.
template <class Item>
const Item& find_or_first(const std::vector<Item>& items, int Item::*key, int value) {
  const Item* found = &items.front();
  for (const Item& it : items)
    if (it.*key == value) found = &it;
  return *found;
}

/// The layer a per-layer chart shows among `layers` (run or analysis layers): their numbers go to
/// `numbers` (the chart's layer selector); returns the one numbered `layer` (else the first), or
/// nullptr with `note` = "The <source> holds no layers." when there are none.
template <class Layer>
const Layer* pick_layer(const std::vector<Layer>& layers, int layer, const std::string& source,
                        std::vector<int>& numbers, std::string& note) {
  numbers = keys_of(layers, &Layer::layer);
  if (layers.empty()) {
    note = "The " + source + " holds no layers.";
    return nullptr;
  }
  return &find_or_first(layers, &Layer::layer, layer);
}

/// Title line of a chart: "<chart> — <capture file name> · <where> · SYNTHETIC", leaving out the
/// parts that are empty (no capture, `where` empty) and SYNTHETIC unless the capture is synthetic.
std::string chart_title(const std::string& chart, const CaptureSummary& capture,
                        const std::string& where);

/// Empty-state text of a chart that needs `what` ("analysis" or "run") and does not have it yet:
/// "No capture open.", "<What> running…" while jobs are in flight, "No <what> yet …" otherwise.
std::string waiting_note(const Snapshot& snapshot, const std::string& what);

/// What a chart says about a run that is not the current configuration's full result: "" when
/// it is; "PARTIAL run (cancelled): only the layers finished before the cancel." for a cancelled
/// run; "A rerun is in progress: this is the previous run." while the edited configuration runs;
/// "Stale: the configuration changed since this run (F5 runs it)." otherwise.
std::string run_state_note(const Snapshot& snapshot);

}  // namespace kvwb::views
