#include "sessions/explore/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "io/limits.h"
#include "model/tokenizer.h"
#include "sessions/analysis/pareto.h"
#include "sessions/explore/result_store.h"
#include "base/thread_pool.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<GridCell> expand_sweep_grid(const json& grid, const std::string& source, size_t* dropped) {
  std::vector<json> subs;
  json fixed = json::object(), base;
  if (grid.is_array()) {
    for (const auto& g : grid) subs.push_back(g);
  } else if (grid.is_object() && grid.contains("grids")) {
    for (auto it = grid.begin(); it != grid.end(); ++it)
      if (it.key() != "grids" && it.key() != "fixed" && it.key() != "base")
        throw InvalidArgument(source + ": a grid with \"grids\" may only also hold \"fixed\" and \"base\", not '" +
                              it.key() + "'");
    if (!grid["grids"].is_array()) throw InvalidArgument(source + ": \"grids\" must be a list of grid objects");
    for (const auto& g : grid["grids"]) subs.push_back(g);
    if (grid.contains("fixed")) {
      fixed = grid["fixed"];
      if (!fixed.is_object()) throw InvalidArgument(source + ": \"fixed\" must be an object");
    }
    if (grid.contains("base")) base = grid["base"];
  } else {
    subs.push_back(grid);
  }
  if (subs.empty()) throw InvalidArgument(source + ": the grid list is empty");
  // One cap for every grid form: the cells of all sub-grids together, counted before expanding any.
  uint64_t total = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    const std::string where = subs.size() > 1 ? source + ": grid " + std::to_string(i) : source;
    total += grid_cell_count(subs[i], where);
    if (total > static_cast<uint64_t>(io::kMaxGridCells))
      throw InvalidArgument(source + ": the grids have more than " + std::to_string(io::kMaxGridCells) +
                            " cells together (the limit of one sweep; split it into several stores)");
  }
  std::vector<GridCell> out;
  std::unordered_set<std::string> seen;
  size_t drop = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    json g = subs[i];
    const std::string where = subs.size() > 1 ? source + ": grid " + std::to_string(i) : source;
    if (!g.is_object()) throw InvalidArgument(where + ": a sweep grid must be a JSON object");
    if (!fixed.empty()) {
      json f = fixed;
      if (g.contains("fixed")) {
        if (!g["fixed"].is_object()) throw InvalidArgument(where + ": \"fixed\" must be an object");
        f.update(g["fixed"]);
      }
      g["fixed"] = f;
    }
    if (!base.is_null() && !g.contains("base")) g["base"] = base;
    for (auto& cell : expand_grid(g, where)) {
      if (!seen.insert(run_config_hash(cell.config)).second) {
        ++drop;
        continue;
      }
      out.push_back(std::move(cell));
    }
  }
  if (dropped) *dropped = drop;
  return out;
}

namespace {

/// store.json "calibration": what identifies a bundle's contents.
json bundle_settings_json(const CalibrationBundle& b) {
  return {{"bundle", b.dir},
          {"bundle_manifest_sha256", b.manifest_sha256},
          {"calibrated_on", {{"file_name", b.capture_file_name}, {"sha256", b.capture_sha256}}}};
}

}  // namespace

std::string sweep_grid_sha256(const json& grid) {
  const std::string t = grid.dump();
  return io::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(t.data()), t.size()));
}

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool folder_has_entries(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  return fs::directory_iterator(dir, ec) != fs::directory_iterator();
}

/// Refuses to resume the store `store_dir` when its `stored` setting differs from the `wanted` one:
/// `without` / `with` describe a store made without / with the setting, `how` how to resume.
void require_same_setting(const std::string& store_dir, const json& stored, const json& wanted,
                          const std::string& without, const std::string& with,
                          const std::string& how) {
  if (stored == wanted) return;
  throw InvalidArgument("sweep: the store " + store_dir + " was made " +
                        (stored.is_null() ? without : with + " " + stored.dump()) +
                        ", but this sweep asks for " +
                        (wanted.is_null() ? std::string("none") : wanted.dump()) + "; " + how);
}

}  // namespace

SweepSummary run_sweep(const std::string& capture_path, const json& grid, const std::string& store_dir,
                       const SweepOptions& opt, JobControl* job) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.jobs < 1) throw InvalidArgument("sweep: jobs must be >= 1, got " + std::to_string(opt.jobs));
  SweepSummary sum;
  const std::vector<GridCell> cells = expand_sweep_grid(grid, opt.grid_source, &sum.dropped);
  sum.grid_cells = cells.size();
  sum.shard = opt.shard;
  std::vector<size_t> selected;  // indices into cells, ascending: the whole grid or one shard
  if (opt.shard.whole()) {
    for (size_t i = 0; i < cells.size(); ++i) selected.push_back(i);
  } else {
    selected = shard_cells(cells, opt.shard);
  }
  sum.cells = selected.size();
  std::error_code ec;
  if (fs::exists(store_dir, ec) && !fs::is_directory(store_dir, ec))
    throw InvalidArgument("sweep: the store " + store_dir + " exists and is not a folder");
  const bool has_store = fs::exists(store_meta_path(store_dir), ec);
  if (!opt.resume && folder_has_entries(store_dir))
    throw InvalidArgument("sweep: the store folder " + store_dir +
                          " is not empty; pass --resume to continue the sweep stored there, or choose a new folder");
  if (opt.resume && !has_store && folder_has_entries(store_dir))
    throw InvalidArgument("sweep: cannot resume into " + store_dir +
                          ": the folder is not empty but holds no store.json (not a kvwb result store)");
  // Validate the capture before the store is touched: a capture that cannot be read is an error
  // of the sweep, not a failure of every cell.
  { io::CaptureReader probe(capture_path); }
  sum.capture_sha256 = io::sha256_file_memo(capture_path, io::default_cache_dir());
  const std::string gsha = sweep_grid_sha256(grid);

  std::unordered_set<std::string> done_keys;
  std::vector<json> stored_failures;  // failure records already in the store
  if (has_store) {
    StoreContents sc = read_result_store(store_dir);
    const std::string stored_sha = sc.meta.value("capture", json::object()).value("sha256", std::string());
    if (stored_sha != sum.capture_sha256)
      throw CaptureChanged("sweep: the store " + store_dir + " was made from a capture with sha256 " + stored_sha +
                           ", but " + capture_path + " has sha256 " + sum.capture_sha256);
    if (sc.meta.value("grid_sha256", std::string()) != gsha)
      throw InvalidArgument("sweep: the store " + store_dir +
                            " was made from a different grid; resume with the same grid file or use a new store");
    const json stored_e2e = sc.meta.value("e2e", json());
    const json want_e2e = opt.evaluator ? opt.e2e_settings : json();
    require_same_setting(store_dir, stored_e2e, want_e2e, "without end-to-end evaluation",
                         "with end-to-end settings",
                         "resume with the same --model/--text/--context/--continuation/--passages "
                         "or use a new store");
    const json stored_cal = sc.meta.value("calibration", json());
    const json want_cal = opt.bundle ? bundle_settings_json(*opt.bundle) : json();
    require_same_setting(store_dir, stored_cal, want_cal, "without a calibration bundle",
                         "with the calibration bundle",
                         "resume with the same --bundle or use a new store");
    const json stored_shard = sc.meta.value("shard", json());
    const ShardSpec have{stored_shard.is_object() ? stored_shard.value("index", size_t{0}) : 0,
                         stored_shard.is_object() ? stored_shard.value("count", size_t{1}) : 1};
    if (!(have == opt.shard))
      throw InvalidArgument("sweep: the store " + store_dir + " holds " +
                            (have.whole() ? std::string("the whole grid") : "shard " + have.text()) +
                            ", but this sweep asks for " +
                            (opt.shard.whole() ? std::string("the whole grid") : "shard " + opt.shard.text()) +
                            "; resume each shard into its own store");
    for (const auto& r : sc.records) {
      done_keys.insert(r["key"].get<std::string>());
      if (r.value("status", std::string()) != "ok") stored_failures.push_back(r);
    }
    sum.problems = sc.problems;
  }
  json meta{{"format", kStoreFormat},
            {"format_version", kStoreFormatVersion},
            {"capture", {{"file", capture_path}, {"sha256", sum.capture_sha256}}},
            {"grid", grid},
            {"grid_sha256", gsha},
            {"cells", selected.size()},
            {"created_unix", unix_now()}};
  if (opt.evaluator) meta["e2e"] = opt.e2e_settings;
  if (opt.bundle) meta["calibration"] = bundle_settings_json(*opt.bundle);
  if (!opt.shard.whole())
    meta["shard"] = {{"index", opt.shard.index}, {"count", opt.shard.count}, {"grid_cells", cells.size()}};
  ResultStoreWriter store(store_dir, meta);
  sum.repaired_bytes = store.repaired_bytes();

  // The configurations actually run: with a bundle, its artefacts applied (or why they cannot be).
  std::vector<RunConfig> configs;
  std::vector<std::string> apply_errors(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    configs.push_back(cells[i].config);
    configs.back().threads = 1;  // results never depend on it; parallelism is across cells
    if (!opt.bundle) continue;
    try {
      configs.back() = apply_calibration_bundle(configs.back(), *opt.bundle);
    } catch (const Error& e) {
      apply_errors[i] = e.what();
    }
  }
  std::vector<size_t> todo;
  std::unordered_set<std::string> selected_keys;
  for (size_t i : selected) {
    const std::string key = result_key(sum.capture_sha256, run_config_hash(configs[i]));
    selected_keys.insert(key);
    if (done_keys.count(key))
      ++sum.skipped;
    else
      todo.push_back(i);
  }

  std::mutex mu;  // guards counters and progress calls
  size_t finished = sum.skipped;
  if (job && job->progress) job->progress(finished, selected.size(), "");
  std::atomic<bool> stop{false}, fatal{false};
  std::vector<std::unique_ptr<JobControl>> cell_jobs;
  for (size_t i = 0; i < todo.size(); ++i) cell_jobs.push_back(std::make_unique<JobControl>());
  std::atomic<bool> monitor_done{false};
  std::thread monitor([&] {
    while (!monitor_done.load()) {
      if ((job && job->cancel.load()) || fatal.load()) {
        stop.store(true);
        for (auto& cj : cell_jobs) cj->cancel.store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::exception_ptr fatal_error;
  std::vector<json> new_failures;  // failure records stored now (guarded by mu)
  auto run_cell = [&](size_t n) {
    if (stop.load() || (job && job->cancel.load())) return;
    const size_t ci = todo[n];
    const GridCell& cell = cells[ci];
    const RunConfig& cfg = configs[ci];
    const std::string hash = run_config_hash(cfg);
    json rec{{"key", result_key(sum.capture_sha256, hash)},
             {"cell", ci},
             {"options", cell.options},
             {"config_hash", hash},
             {"capture_sha256", sum.capture_sha256}};
    RunOptions ro;
    ro.compute_sha256 = false;
    ro.cache = opt.cache;
    const auto c0 = std::chrono::steady_clock::now();
    bool failed = false;
    try {
      if (!apply_errors[ci].empty()) throw InvalidArgument(apply_errors[ci]);
      const RunResult r = run_config(capture_path, cfg, ro, cell_jobs[n].get());
      json res = run_result_to_json(r);
      res["capture"]["sha256"] = sum.capture_sha256;
      if (opt.bundle)
        res["calibration"] = calibration_provenance_json(*opt.bundle, cfg, "capture", capture_path, sum.capture_sha256);
      if (opt.evaluator) res["totals"]["e2e"] = e2e_totals_json(opt.evaluator->evaluate(cfg, cell_jobs[n].get()));
      rec["status"] = "ok";
      rec["result"] = std::move(res);
    } catch (const Cancelled&) {
      return;  // a cell in flight when the sweep was cancelled: not stored
    } catch (const Error& e) {
      if (is_shared_input_error(e)) {  // the capture, the store or the machine: stop the sweep
        std::lock_guard<std::mutex> lock(mu);
        if (!fatal_error) fatal_error = std::current_exception();
        fatal.store(true);
        return;
      }
      failed = true;
      rec["status"] = "failed";
      rec["error"] = {{"code", e.code()}, {"message", e.what()}};
    } catch (const std::exception& e) {
      failed = true;
      rec["status"] = "failed";
      rec["error"] = {{"code", "INTERNAL"}, {"message", e.what()}};
    }
    rec["timing"] = {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count()},
                     {"finished_unix", unix_now()}};
    try {
      store.append(rec);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!fatal_error) fatal_error = std::current_exception();
      fatal.store(true);
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    ++sum.ran;
    if (failed) ++sum.failed;
    ++finished;
    if (failed) new_failures.push_back(rec);
    if (job && job->progress) job->progress(finished, selected.size(), cell.options.dump());
  };
  try {
    parallel_for(todo.size(), std::min<int>(opt.jobs, static_cast<int>(std::max<size_t>(todo.size(), 1))), run_cell,
                 &stop);
  } catch (...) {
    monitor_done.store(true);
    monitor.join();
    throw;
  }
  monitor_done.store(true);
  monitor.join();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto* list : {&stored_failures, &new_failures})
    for (const auto& r : *list)
      if (selected_keys.count(r.value("key", std::string())))
        sum.failures.push_back({{"cell", r.value("cell", json())},
                                {"config_hash", r.value("config_hash", std::string())},
                                {"options", r.value("options", json::object())},
                                {"error", r.value("error", json::object())}});
  std::sort(sum.failures.begin(), sum.failures.end(), [](const json& a, const json& b) {
    return a.value("cell", int64_t{-1}) < b.value("cell", int64_t{-1});
  });
  if (fatal_error) std::rethrow_exception(fatal_error);
  if (job && job->cancel.load() && sum.skipped + sum.ran < sum.cells)
    throw Cancelled("sweep cancelled: " + std::to_string(sum.skipped + sum.ran) + " of " + std::to_string(sum.cells) +
                    " cells are in the store " + store_dir + "; rerun with --resume to finish");
  return sum;
}

json e2e_totals_json(const EvalResult& r) {
  const EvalAggregate& a = r.aggregate;
  const json top1_ci = a.top1_ci.defined()
                           ? json::array({1.0 - a.top1_ci.hi / 100.0, 1.0 - a.top1_ci.lo / 100.0})
                           : json(nullptr);
  return {{"delta_ppl", a.delta_ppl},
          {"delta_ppl_ci", interval_json(a.delta_ppl_ci)},
          {"abs_delta_ppl", std::fabs(a.delta_ppl)},
          {"abs_delta_ppl_ci", interval_json(a.abs_delta_ppl_ci)},
          {"top1", a.top1},
          {"top1_ci", interval_json(a.top1_ci)},
          {"one_minus_top1", 1.0 - a.top1 / 100.0},
          {"one_minus_top1_ci", top1_ci},
          {"kl", a.kl},
          {"kl_ci", interval_json(a.kl_ci)},
          {"verdict", a.verdict},
          {"verdict_possible", a.verdict_possible},
          {"passages_needed", a.passages_needed ? json(*a.passages_needed) : json(nullptr)},
          {"verdict_point", a.verdict_point},
          {"passages", r.passages.size()},
          {"passages_available", r.passages_available},
          {"selection", r.selection},
          {"context", r.context},
          {"continuation", r.continuation},
          {"bootstrap", bootstrap_json(r.bootstrap)},
          {"seconds_per_passage", r.seconds_per_passage}};
}

json e2e_settings_json(const std::string& model_path, const std::string& text_source, const Evaluator& ev) {
  return {{"model", model_path},
          {"text", text_source},
          {"context", ev.context()},
          {"continuation", ev.continuation()},
          {"passages", ev.passages()},
          {"selection", ev.selection()},
          {"bootstrap", bootstrap_json(ev.bootstrap())}};
}

std::unique_ptr<EndToEndAxes> load_end_to_end_axes(const EndToEndRequest& request) {
  auto axes = std::make_unique<EndToEndAxes>();
  axes->model = std::make_unique<model::LoadedModel>(model::load_model(request.model_path, request.tokenizer_path));
  if (!axes->model->tokenizer)
    throw InvalidArgument(request.model_path +
                          " has no tokenizer (tokens.json or tokenizer.bin): end-to-end axes need one to tokenise " +
                          request.text_path);
  const std::vector<int32_t> toks = axes->model->tokenizer->encode(model::read_text_file(request.text_path));
  axes->text_tokens = toks.size();
  axes->evaluator = std::make_unique<Evaluator>(axes->model->model, toks, request.eval);
  const std::string text_source = fs::path(request.text_path).filename().string() + " (" +
                                  std::to_string(toks.size()) + " tokens)";
  axes->settings = e2e_settings_json(request.model_path, text_source, *axes->evaluator);
  return axes;
}

namespace {

struct Column {
  const char* name;
  const char* metric;  // pareto metric name, or nullptr for special columns
};

const std::vector<Column>& table_columns() {
  static const std::vector<Column> c = {{"k_rel_mse", "k_rel_mse"},
                                        {"v_rel_mse", "v_rel_mse"},
                                        {"k_whitened_mse", "k_whitened_mse"},
                                        {"attn_out_rel_err", "attn_out_rel_err"},
                                        {"attn_kl", "attn_kl"},
                                        {"attn_top1", "attention.attn_top1"}};
  return c;
}

/// End-to-end columns (totals.e2e), present in a table only when some record has them.
const std::vector<Column>& e2e_columns() {
  static const std::vector<Column> c = {
      {"e2e_delta_ppl", "e2e.delta_ppl"}, {"e2e_top1", "e2e.top1"}, {"e2e_kl", "e2e.kl"}};
  return c;
}

bool has_e2e(const std::vector<json>& records) {
  for (const auto& r : records)
    if (r.contains("result") && r["result"].contains("totals") && r["result"]["totals"].contains("e2e")) return true;
  return false;
}

std::vector<const json*> by_cell(const std::vector<json>& records) {
  std::vector<const json*> v;
  for (const auto& r : records) v.push_back(&r);
  std::stable_sort(v.begin(), v.end(), [](const json* a, const json* b) {
    return a->value("cell", static_cast<int64_t>(-1)) < b->value("cell", static_cast<int64_t>(-1));
  });
  return v;
}

std::string failure_of(const json& rec) {
  // Store records are validated on reading (result_store.cpp); these reads still never assume a
  // field exists, so a record from any source gives a row rather than an exception.
  auto error_text = [](const json& holder) {
    const json e = holder.contains("error") && holder["error"].is_object() ? holder["error"] : json::object();
    return e.value("code", std::string("?")) + ": " + e.value("message", std::string());
  };
  if (rec.value("status", std::string()) != "ok") return error_text(rec);
  if (!rec.contains("result") || !rec["result"].is_object()) return "the record holds no result";
  const json& res = rec["result"];
  if (!res.value("failed", false)) return {};
  if (res.contains("layers") && res["layers"].is_array())
    for (const auto& l : res["layers"])
      for (const char* s : {"k", "v"})
        if (l.is_object() && l.contains(s) && l[s].is_object() && l[s].value("failed", false)) {
          const std::string e = error_text(l[s]);
          const size_t colon = e.find(": ");
          return e.substr(0, colon) + ": layer " + std::to_string(l.value("layer", -1)) + " " +
                 (s[0] == 'k' ? "K" : "V") + e.substr(colon);
        }
  return "a layer-stream failed";
}

}  // namespace

json sweep_table_json(const std::vector<json>& records) {
  const bool e2e = has_e2e(records);
  json rows = json::array();
  for (const json* rec : by_cell(records)) {
    json row{{"cell", rec->value("cell", static_cast<int64_t>(-1))},
             {"config_hash", rec->value("config_hash", std::string())},
             {"options", rec->value("options", json::object())}};
    const std::string fail = failure_of(*rec);
    row["failure"] = fail.empty() ? json(nullptr) : json(fail);
    if (rec->contains("result")) {
      const json& res = (*rec)["result"];
      row["ratio_vs_bf16"] = res.value("ratio_vs_bf16", json(nullptr));
      row["bits_per_value"] = res.value("bits_per_value", json(nullptr));
      row["total_bytes"] = res.value("total_bytes", json(nullptr));
      for (const auto& c : table_columns()) {
        const auto v = metric_value(res, c.metric);
        row[c.name] = v ? json(*v) : json(nullptr);
      }
    }
    if (e2e) {
      const bool has = rec->contains("result");
      for (const auto& c : e2e_columns()) {
        const auto v = has ? metric_value((*rec)["result"], c.metric) : std::nullopt;
        row[c.name] = v ? json(*v) : json(nullptr);
        const auto ci = has ? metric_interval((*rec)["result"], c.metric) : std::nullopt;
        row[std::string(c.name) + "_lo"] = ci ? json(ci->first) : json(nullptr);
        row[std::string(c.name) + "_hi"] = ci ? json(ci->second) : json(nullptr);
      }
      const json e = has ? (*rec)["result"].value("totals", json::object()).value("e2e", json::object()) : json();
      row["e2e_verdict"] = e.is_object() && e.contains("verdict") ? e["verdict"] : json(nullptr);
      row["e2e_passages_needed"] = e.is_object() && e.contains("passages_needed") ? e["passages_needed"] : json(nullptr);
      row["e2e_passages"] = e.is_object() && e.contains("passages") ? e["passages"] : json(nullptr);
    }
    rows.push_back(row);
  }
  return json{{"format", "kvwb-sweep-table"}, {"rows", rows}};
}

std::string sweep_table_csv(const std::vector<json>& records) {
  std::ostringstream os;
  const bool e2e = has_e2e(records);
  os << "cell,config_hash,ratio_vs_bf16,bits_per_value,total_bytes";
  for (const auto& c : table_columns()) os << ',' << c.name;
  if (e2e) {
    for (const auto& c : e2e_columns()) os << ',' << c.name << ',' << c.name << "_lo," << c.name << "_hi";
    os << ",e2e_verdict,e2e_passages_needed,e2e_passages";
  }
  os << ",failure,options\n";
  auto quote = [](const std::string& s) {
    std::string o = "\"";
    for (char ch : s) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return o + "\"";
  };
  auto numtext = [](const json& v) -> std::string {
    if (!v.is_number()) return {};
    if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
    char b[64];
    std::snprintf(b, sizeof b, "%.9g", v.get<double>());
    return b;
  };
  const json table = sweep_table_json(records);
  for (const auto& row : table["rows"]) {
    os << row["cell"].dump() << ',' << row["config_hash"].get<std::string>() << ','
       << numtext(row.value("ratio_vs_bf16", json())) << ',' << numtext(row.value("bits_per_value", json())) << ','
       << numtext(row.value("total_bytes", json()));
    for (const auto& c : table_columns()) os << ',' << numtext(row.value(c.name, json()));
    if (e2e) {
      for (const auto& c : e2e_columns())
        os << ',' << numtext(row.value(c.name, json())) << ',' << numtext(row.value(std::string(c.name) + "_lo", json()))
           << ',' << numtext(row.value(std::string(c.name) + "_hi", json()));
      os << ',' << (row["e2e_verdict"].is_string() ? row["e2e_verdict"].get<std::string>() : std::string()) << ','
         << numtext(row.value("e2e_passages_needed", json())) << ',' << numtext(row.value("e2e_passages", json()));
    }
    os << ',' << (row["failure"].is_string() ? quote(row["failure"].get<std::string>()) : std::string()) << ','
       << quote(row["options"].dump()) << '\n';
  }
  return os.str();
}

}  // namespace kvwb::sessions
