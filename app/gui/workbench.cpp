// The workbench controller (app/gui/workbench.h): session document + undo, background jobs on
// worker threads with progress marshalled to the UI thread, and the immutable snapshots the views
// draw.
#include "app/gui/workbench.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QMetaObject>
#include <QStandardPaths>
#include <QTimer>
#include <algorithm>
#include <filesystem>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "base/errors.h"
#include "base/thread_pool.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "sessions/analysis/analysis.h"
#include "sessions/run/backends.h"
#include "sessions/run/result_cache.h"
#include "io/synthetic_capture.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"

namespace kvwb::app {

using json = nlohmann::json;

json default_sweep_grid() {
  // One sub-grid per codec family (their options differ); block 256 keeps short captures (a few
  // hundred tokens) out of the all-hot-tail regime. Validated with `kvwb sweep` on tiny1m: 11
  // cells.
  auto same = [](const char* codec) { return json{{"k_codec", {codec}}, {"v_codec", {codec}}}; };
  auto bits = [](const char* codec, int b) {
    return json{{"k_codec", {codec}}, {"v_codec", {codec}}, {"bits_k", {b}}, {"bits_v", {b}}};
  };
  json grids = json::array();
  for (int b : {2, 3, 4}) grids.push_back(bits("kakeya_pca", b));
  grids.push_back(json{{"k_codec", {"kakeya_pca"}}, {"v_codec", {"q8_0"}}, {"bits_k", {3}}});
  grids.push_back(same("turbo3"));
  grids.push_back(same("turbo4"));
  grids.push_back(same("q8_0"));
  grids.push_back(same("q4_0"));
  grids.push_back(bits("kivi", 2));
  grids.push_back(bits("kivi", 4));
  grids.push_back(same("fp8_e4m3"));
  return json{{"fixed", {{"block_size", 256}}}, {"grids", grids}};
}

namespace {

views::CaptureSummary summarize(const io::CaptureInfo& ci, const std::string& path) {
  views::CaptureSummary s;
  s.path = path;
  s.model_name = ci.model_name;
  s.synthetic = io::is_synthetic_capture(ci.model_name, ci.text_source);
  s.num_layers = ci.num_layers;
  s.num_query_heads = ci.num_query_heads;
  s.num_kv_heads = ci.num_kv_heads;
  s.head_dim = ci.head_dim;
  s.sequences = ci.sequences;
  s.tokens = ci.tokens;
  for (const io::LayerInfo& li : ci.layers) {
    s.layers.push_back(li.layer);
    s.attention.push_back(li.attention);
    s.has_q.push_back(li.has_q_pre);
  }
  return s;
}

/// Background jobs yield the CPU to the UI thread (threads they spawn inherit the nice value).
void lower_thread_priority() {
#ifdef __linux__
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
#endif
}

std::string boundary_text(const std::vector<int>& layers) {
  if (layers.empty()) return "none";
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? "," : "") + std::to_string(layers[i]);
  return s;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kProgressIntervalMs = 50;  // ≤ 20 progress updates per second and job
constexpr int64_t kSweepReloadMs = 1000;     // records re-read at most once a second
constexpr const char* kDefaultConfigName = "default";
/// Residual bytes the run history may hold (older runs drop their residuals beyond it; the
/// current run and the baseline keep theirs).
constexpr uint64_t kHistoryResidualBudget = 192ull << 20;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t residual_bytes(const sessions::RunResult& r) {
  uint64_t n = 0;
  for (const auto& l : r.layers)
    n += (l.k.scaled_residuals.size() + l.v.scaled_residuals.size()) * sizeof(float);
  return n;
}

/// A copy of `r` without the Kakeya scaled residuals (one layer's residuals copied at a time).
std::shared_ptr<const sessions::RunResult> without_residuals(const sessions::RunResult& r) {
  auto out = std::make_shared<sessions::RunResult>();
  out->config = r.config;
  out->config_hash = r.config_hash;
  out->capture_file = r.capture_file;
  out->capture_sha256 = r.capture_sha256;
  out->backend = r.backend;
  out->failed = r.failed;
  out->total_bytes = r.total_bytes;
  out->bf16_bytes = r.bf16_bytes;
  out->tail_bytes = r.tail_bytes;
  out->reference_bytes = r.reference_bytes;
  out->seconds = r.seconds;
  out->warnings = r.warnings;
  out->skip_m = r.skip_m;
  out->skip_median = r.skip_median;
  for (const auto& l : r.layers) {
    sessions::LayerResult c = l;
    std::vector<float>().swap(c.k.scaled_residuals);
    std::vector<float>().swap(c.v.scaled_residuals);
    out->layers.push_back(std::move(c));
  }
  return out;
}

/// Canonical text of a configuration (equal texts run to equal results on one capture).
std::string config_key(const sessions::RunConfig& c) {
  try {
    return sessions::run_config_to_json(c).dump() + " backend=" + std::string(sessions::backend_name(c.backend));
  } catch (const Error&) {
    return {};
  }
}

std::shared_ptr<const sessions::OutlierRates> outlier_rates_of(const sessions::RunResult& r) {
  try {
    auto o = std::make_shared<sessions::OutlierRates>(sessions::outlier_rates_from_run(r, true));
    if (o->has_k || o->has_v) return o;
  } catch (const Error&) {
  }
  return nullptr;
}

}  // namespace

struct Workbench::Impl {
  enum class Outcome { kOk, kFailed, kCancelled };

  struct Job {
    JobInfo info;
    std::shared_ptr<JobControl> control;
    std::thread thread;
  };

  explicit Impl(Workbench* owner) : q(owner), undo(sessions::SessionDocument{}) {
    autosave_timer.setSingleShot(true);
    autosave_timer.setInterval(800);
    autosave_path =
        QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/autosave.kvwb.json";
  }

  Workbench* q;
  sessions::UndoStack undo;
  std::vector<QString> undo_labels, redo_labels;
  sessions::SessionDocument saved_doc;
  QString session_path;
  std::string capture_sha;  // pinned sha256 of the open capture ("" until known)

  views::CaptureSummary capture;
  std::shared_ptr<const sessions::AnalysisResult> analysis;
  std::shared_ptr<const sessions::RunResult> run;
  std::shared_ptr<const sessions::OutlierRates> outliers;
  bool run_is_current = false;
  bool run_partial = false;
  uint64_t run_id = 0;                      // history id of `run` (0 = partial / none)
  std::vector<views::RunEntryPtr> history;  // oldest first
  views::RunEntryPtr baseline;
  std::string baseline_pending;  // label of the baseline job in flight
  int baseline_job = 0;
  uint64_t next_run_id = 1;
  QString run_label = "open";  // what the next run stands for (the last edit)
  std::map<std::string, std::vector<json>> sweep_records;
  int active_sweep = -1;
  views::Selection selection;
  uint64_t generation = 0;
  views::SnapshotPtr snapshot = std::make_shared<views::Snapshot>();
  bool dirty = true, emit_pending = false;

  std::map<int, std::unique_ptr<Job>> jobs;
  int next_job_id = 1;
  int run_job = 0, analysis_job = 0;
  uint64_t run_seq = 0, analysis_seq = 0, capture_seq = 0;

  QString autosave_path;
  bool autosave_enabled = true;
  QTimer autosave_timer;

  /// Worker threads of runs, analyses and sweeps (Preferences; 0 = every hardware thread).
  static std::atomic<int>& thread_setting() {
    static std::atomic<int> n{0};
    return n;
  }
  static int threads() { return resolve_threads(thread_setting().load()); }

  /// Per-(layer, stream) results shared by every run of this window, the CLI and other processes
  /// (sessions/run/result_cache.h); null when switched off in Preferences.
  std::shared_ptr<sessions::ResultCache> cache =
      std::make_shared<sessions::ResultCache>(sessions::default_result_cache_options());
  bool cache_enabled = true;
  sessions::ResultCache* run_cache() const { return cache_enabled ? cache.get() : nullptr; }

  sessions::RunConfig config_of(const sessions::SessionDocument& d) const {
    sessions::RunConfig c;
    if (const sessions::RunConfig* cur = d.current()) c = *cur;
    c.boundary = d.boundary;
    return c;
  }

  std::string backend_label(const sessions::RunConfig& cfg) const {
    try {
      std::string note;
      if (sessions::resolve_backend(cfg.backend, &note) == sessions::Backend::kCuda) {
        for (const auto& d : sessions::list_backends())
          if (d.name == "cuda" && !d.devices.empty()) return "CUDA: " + d.devices.front().name;
        return "CUDA";
      }
    } catch (const Error& e) {
      return "CPU (" + std::to_string(threads()) + " threads; " +
             std::string(sessions::backend_name(cfg.backend)) + " unavailable)";
    }
    const int n = threads();
    return "CPU (" + std::to_string(n) + (n == 1 ? " thread)" : " threads)");
  }

  /// Marks the snapshot stale and emits snapshot_changed once, after the current event (several
  /// changes in one event give one snapshot).
  void publish() {
    dirty = true;
    if (emit_pending) return;
    emit_pending = true;
    QTimer::singleShot(0, q, [this] {
      emit_pending = false;
      emit q->snapshot_changed(current());
    });
  }

  const views::SnapshotPtr& current() {
    if (dirty) build();
    return snapshot;
  }

  void build() {
    dirty = false;
    auto s = std::make_shared<views::Snapshot>();
    s->generation = ++generation;
    s->capture = capture;
    s->analysis = analysis;
    const sessions::RunConfig cfg = config_of(undo.current());
    s->config = std::make_shared<const sessions::RunConfig>(cfg);
    s->run = run;
    s->run_is_current = run && run_is_current;
    s->outliers = outliers;
    s->run_partial = run && run_partial;
    s->run_in_flight = run_job != 0;
    s->run_id = run_id;
    s->history = history;
    s->baseline = baseline;
    s->baseline_pending = baseline_pending;
    for (const auto& sw : undo.current().sweeps) {
      views::SweepSnapshot ss;
      ss.name = sw.name;
      ss.store_path = sw.store_path;
      if (auto it = sweep_records.find(sw.name); it != sweep_records.end()) ss.records = it->second;
      s->sweeps.push_back(std::move(ss));
    }
    s->active_sweep = s->sweeps.empty()
                          ? -1
                          : std::clamp(active_sweep, 0, static_cast<int>(s->sweeps.size()) - 1);
    s->selection = selection;
    s->backend_label = backend_label(cfg);
    for (const auto& [id, j] : jobs) s->running_jobs.push_back(j->info.name.toStdString());
    snapshot = std::move(s);
  }

  // ---- jobs ----
  int start(const QString& name, Work work) {
    const int id = next_job_id++;
    auto job = std::make_unique<Job>();
    job->info.id = id;
    job->info.name = name;
    job->control = std::make_shared<JobControl>();
    auto last = std::make_shared<std::atomic<int64_t>>(0);
    Workbench* wb = q;
    job->control->progress = [wb, id, last](size_t done, size_t total, const std::string& detail) {
      const int64_t t = now_ms();
      const bool final = total > 0 && done >= total;
      if (!final && t - last->load() < kProgressIntervalMs) return;
      last->store(t);
      QMetaObject::invokeMethod(
          wb,
          [wb, id, done, total, d = QString::fromStdString(detail)] {
            wb->impl_->on_progress(id, done, total, d);
          },
          Qt::QueuedConnection);
    };
    std::shared_ptr<JobControl> control = job->control;
    job->thread = std::thread([wb, id, control, work = std::move(work)] {
      lower_thread_priority();
      Continuation cont;
      Outcome outcome = Outcome::kOk;
      QString code, message;
      try {
        cont = work(*control);
      } catch (const Cancelled&) {
        outcome = Outcome::kCancelled;
      } catch (const Error& e) {
        outcome = Outcome::kFailed;
        code = QString::fromStdString(e.code());
        message = QString::fromStdString(e.what());
      } catch (const std::bad_alloc&) {
        outcome = Outcome::kFailed;
        code = "OUT_OF_MEMORY";
        message = "out of memory";
      } catch (const std::exception& e) {
        outcome = Outcome::kFailed;
        code = "INTERNAL";
        message = QString::fromUtf8(e.what());
      } catch (...) {
        outcome = Outcome::kFailed;
        code = "INTERNAL";
        message = "unknown error";
      }
      QMetaObject::invokeMethod(
          wb,
          [wb, id, cont = std::move(cont), outcome, code, message] {
            wb->impl_->on_finished(id, cont, outcome, code, message);
          },
          Qt::QueuedConnection);
    });
    jobs.emplace(id, std::move(job));
    emit q->jobs_changed();
    publish();
    return id;
  }

  void on_progress(int id, size_t done, size_t total, const QString& detail) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    it->second->info.done = done;
    it->second->info.total = total;
    it->second->info.detail = detail;
    emit q->jobs_changed();
  }

  void on_finished(int id, const Continuation& cont, Outcome outcome, const QString& code,
                   const QString& message) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    std::unique_ptr<Job> job = std::move(it->second);
    jobs.erase(it);
    if (job->thread.joinable()) job->thread.join();
    if (run_job == id) run_job = 0;
    if (analysis_job == id) analysis_job = 0;
    if (baseline_job == id) {
      baseline_job = 0;
      baseline_pending.clear();
    }
    if (cont) {
      try {
        cont();
      } catch (const Error& e) {
        emit q->job_failed(job->info.name, QString::fromStdString(e.code()),
                           QString::fromStdString(e.what()));
      } catch (const std::exception& e) {
        emit q->job_failed(job->info.name, "INTERNAL", QString::fromUtf8(e.what()));
      }
    }
    if (outcome == Outcome::kFailed) emit q->job_failed(job->info.name, code, message);
    if (outcome == Outcome::kCancelled) emit q->job_cancelled(job->info.name);
    emit q->jobs_changed();
    publish();
  }

  void cancel(int id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    it->second->control->cancel = true;
    it->second->info.cancelling = true;
    emit q->jobs_changed();
  }

  void cancel_everything() {
    for (auto& [id, j] : jobs) {
      j->control->cancel = true;
      j->info.cancelling = true;
    }
    if (!jobs.empty()) emit q->jobs_changed();
  }

  // ---- runs and the history ----
  views::RunEntryPtr find_entry(uint64_t id) const {
    for (const auto& e : history)
      if (e->id == id) return e;
    return nullptr;
  }

  const views::RunEntry* find_key(const std::string& key) const {
    if (key.empty()) return nullptr;
    for (auto it = history.rbegin(); it != history.rend(); ++it)
      if ((*it)->config_key == key) return it->get();
    return nullptr;
  }

  /// A new history entry for a finished run of `cfg` (not yet added).
  views::RunEntryPtr make_entry(const sessions::RunConfig& cfg, const std::string& key,
                                std::shared_ptr<const sessions::RunResult> r,
                                std::shared_ptr<const sessions::OutlierRates> o,
                                const QString& label) {
    auto e = std::make_shared<views::RunEntry>();
    e->id = next_run_id++;
    e->label = label.toStdString();
    e->config = std::make_shared<const sessions::RunConfig>(cfg);
    e->config_key = key;
    e->run = std::move(r);
    e->outliers = std::move(o);
    e->selection = selection;
    e->finished_ms = wall_ms();
    return e;
  }

  /// Appends `e` (an older entry of the same configuration is replaced), keeps the newest
  /// kRunHistoryLimit entries and drops residuals of older runs beyond the memory budget.
  void add_to_history(const views::RunEntryPtr& e) {
    history.erase(std::remove_if(history.begin(), history.end(),
                                 [&](const views::RunEntryPtr& h) {
                                   return !e->config_key.empty() && h->config_key == e->config_key;
                                 }),
                  history.end());
    history.push_back(e);
    while (history.size() > views::kRunHistoryLimit) history.erase(history.begin());
    uint64_t total = 0;
    for (const auto& h : history)
      if (h->has_residuals) total += residual_bytes(*h->run);
    for (auto& h : history) {
      if (total <= kHistoryResidualBudget) break;
      if (!h->has_residuals || h->id == run_id) continue;
      const uint64_t bytes = residual_bytes(*h->run);
      if (bytes == 0) continue;
      auto lite = std::make_shared<views::RunEntry>(*h);
      lite->run = without_residuals(*h->run);
      lite->has_residuals = false;
      h = lite;
      total -= bytes;
    }
  }

  void show_entry(const views::RunEntry& e) {
    run = e.run;
    outliers = e.outliers;
    run_is_current = true;
    run_partial = false;
    run_id = e.id;
  }

  /// Runs the current configuration; without `force` a result the history holds is shown instead.
  void start_run(bool force = false) {
    if (capture.path.empty()) return;
    if (run_job) cancel(run_job);  // superseded: its result is discarded
    const uint64_t seq = ++run_seq;
    const uint64_t cap = capture_seq;
    const sessions::RunConfig doc_cfg = config_of(undo.current());
    const std::string key = config_key(doc_cfg);
    const QString label = run_label;
    // A configuration the history holds (with its residuals): its result, at once.
    if (const views::RunEntry* seen = force ? nullptr : find_key(key);
        seen && seen->has_residuals) {
      run_job = 0;
      show_entry(*seen);
      publish();
      return;
    }
    sessions::RunConfig cfg = doc_cfg;
    cfg.threads = threads();
    const std::string path = capture.path;
    run_is_current = false;
    Workbench* wb = q;
    const QString name = "Run configuration";
    std::shared_ptr<sessions::ResultCache> run_cache_ptr = cache_enabled ? cache : nullptr;
    run_job = start(
        name,
        [wb, cfg, doc_cfg, key, label, path, seq, cap, name, run_cache_ptr](JobControl& job) -> Continuation {
          sessions::RunOptions opt;
          opt.collect_residuals = true;
          opt.cache = run_cache_ptr.get();
          auto partial = std::make_shared<sessions::RunResult>();
          // Layer by layer: each finished layer is shown at once (labelled partial) while the
          // rest runs; the runner updates *partial after every layer, before the next progress.
          auto outer = job.progress;
          auto shown = std::make_shared<size_t>(0);
          auto last_post = std::make_shared<int64_t>(0);
          job.progress = [outer, partial, shown, last_post, wb, seq, cap](size_t done, size_t total,
                                                                         const std::string& detail) {
            if (outer) outer(done, total, detail);
            const int64_t t = now_ms();
            if (done == 0 || done >= total || partial->layers.size() <= *shown ||
                t - *last_post < kProgressIntervalMs)
              return;
            *shown = partial->layers.size();
            *last_post = t;
            std::shared_ptr<const sessions::RunResult> p = without_residuals(*partial);
            QMetaObject::invokeMethod(
                wb,
                [wb, p, seq, cap] {
                  Impl& d = *wb->impl_;
                  if (seq != d.run_seq || cap != d.capture_seq || d.run_job == 0) return;
                  d.run = p;
                  d.outliers = nullptr;
                  d.run_partial = true;
                  d.run_id = 0;
                  d.run_is_current = false;
                  d.publish();
                },
                Qt::QueuedConnection);
          };
          try {
            auto r = std::make_shared<const sessions::RunResult>(
                sessions::run_config(path, cfg, opt, &job, partial.get()));
            auto o = outlier_rates_of(*r);
            return [wb, r, o, doc_cfg, key, label, seq, cap] {
              Impl& d = *wb->impl_;
              if (seq != d.run_seq || cap != d.capture_seq) return;
              const views::RunEntryPtr e = d.make_entry(doc_cfg, key, r, o, label);
              d.show_entry(*e);
              d.add_to_history(e);
              if (d.capture_sha.empty()) d.capture_sha = r->capture_sha256;
            };
          } catch (const Cancelled&) {
            std::shared_ptr<const sessions::RunResult> p = partial;
            auto o = p->layers.empty() ? nullptr : outlier_rates_of(*p);
            return [wb, p, o, seq, cap, name] {
              Impl& d = *wb->impl_;
              if (seq != d.run_seq || cap != d.capture_seq) return;  // superseded by a newer run
              if (!p->layers.empty()) {
                d.run = p;
                d.outliers = o;
                d.run_partial = true;
                d.run_id = 0;
              }
              d.run_is_current = false;
              emit wb->message(
                  "warning",
                  QString("Run cancelled: %1 finished layer(s) kept, labelled partial (F5 runs the "
                          "whole configuration)")
                      .arg(p->layers.size()));
              emit wb->job_cancelled(name);
            };
          }
        });
  }

  /// Runs `cfg` (not the current configuration) and pins it as the baseline when it finishes.
  int start_baseline_run(const sessions::RunConfig& doc_cfg, const std::string& key,
                         const QString& label) {
    if (baseline_job) cancel(baseline_job);
    sessions::RunConfig cfg = doc_cfg;
    cfg.threads = threads();
    const std::string path = capture.path;
    const uint64_t cap = capture_seq;
    Workbench* wb = q;
    baseline_pending = label.toStdString();
    std::shared_ptr<sessions::ResultCache> run_cache_ptr = cache_enabled ? cache : nullptr;
    const int id = start(
        "Run baseline",
        [wb, cfg, doc_cfg, key, label, path, cap, run_cache_ptr](JobControl& job) -> Continuation {
          sessions::RunOptions opt;
          opt.collect_residuals = true;
          opt.cache = run_cache_ptr.get();
          auto r = std::make_shared<const sessions::RunResult>(
              sessions::run_config(path, cfg, opt, &job));
          auto o = outlier_rates_of(*r);
          return [wb, r, o, doc_cfg, key, label, cap] {
            Impl& d = *wb->impl_;
            if (cap != d.capture_seq) return;
            const views::RunEntryPtr e = d.make_entry(doc_cfg, key, r, o, label);
            d.add_to_history(e);
            d.baseline = e;
            emit wb->message("info", "Baseline pinned: " + label);
          };
        });
    baseline_job = id;
    publish();
    return id;
  }

  void start_analysis() {
    if (capture.path.empty()) return;
    if (analysis_job) cancel(analysis_job);
    const uint64_t seq = ++analysis_seq;
    const uint64_t cap = capture_seq;
    const std::string path = capture.path;
    Workbench* wb = q;
    analysis_job =
        start("Analyse capture", [wb, path, seq, cap](JobControl& job) -> Continuation {
          sessions::AnalysisOptions opt;
          opt.threads = threads();
          auto a = std::make_shared<const sessions::AnalysisResult>(
              sessions::analyze_capture(path, opt, &job));
          return [wb, a, seq, cap] {
            Impl& d = *wb->impl_;
            if (seq != d.analysis_seq || cap != d.capture_seq) return;
            d.analysis = a;
          };
        });
  }

  // ---- document ----
  void commit(sessions::SessionDocument next, const QString& label) {
    if (next == undo.current()) return;
    const sessions::RunConfig before = config_of(undo.current());
    undo.commit(std::move(next));
    run_label = label;
    undo_labels.push_back(label);
    redo_labels.clear();
    while (undo_labels.size() > undo.undo_depth()) undo_labels.erase(undo_labels.begin());
    after_change(before);
  }

  static bool same_config(const sessions::RunConfig& a, const sessions::RunConfig& b) {
    try {
      return sessions::run_config_to_json(a) == sessions::run_config_to_json(b);
    } catch (const Error&) {
      return false;
    }
  }

  void after_change(const sessions::RunConfig& before) {
    const bool config_changed = !same_config(before, config_of(undo.current()));
    for (const auto& sw : undo.current().sweeps)
      if (!sweep_records.count(sw.name)) load_records(sw, true);
    if (config_changed) start_run();
    publish();
    emit q->document_changed();
    if (autosave_enabled) autosave_timer.start();
  }

  /// `missing_ok`: a sweep about to start has no store folder yet (no warning for it).
  void load_records(const sessions::SessionSweep& sw, bool missing_ok = false) {
    std::error_code ec;
    if (missing_ok && !std::filesystem::exists(sw.store_path, ec)) {
      sweep_records[sw.name] = {};
      return;
    }
    try {
      sessions::StoreContents c = sessions::read_result_store(sw.store_path);
      sweep_records[sw.name] = std::move(c.records);
    } catch (const Error& e) {
      sweep_records[sw.name] = {};
      emit q->message("warning",
                      QString("Sweep %1: %2")
                          .arg(QString::fromStdString(sw.name), QString::fromUtf8(e.what())));
    }
  }

  void reset_document(sessions::SessionDocument doc, const views::CaptureSummary& summary) {
    cancel_everything();
    ++capture_seq;
    undo = sessions::UndoStack(doc);
    undo_labels.clear();
    redo_labels.clear();
    saved_doc = doc;
    capture = summary;
    capture_sha = doc.capture_sha256;
    analysis.reset();
    run.reset();
    outliers.reset();
    run_is_current = false;
    run_partial = false;
    run_id = 0;
    history.clear();
    baseline.reset();
    baseline_pending.clear();
    baseline_job = 0;
    run_label = "open";
    sweep_records.clear();
    for (const auto& sw : doc.sweeps) load_records(sw);
    active_sweep = doc.sweeps.empty() ? -1 : static_cast<int>(doc.sweeps.size()) - 1;
    selection = {};
    if (!capture.layers.empty()) selection.layer = capture.layers.front();
    start_analysis();
    start_run();
    publish();
    emit q->document_changed();
  }
};

Workbench::Workbench(QObject* parent) : QObject(parent), impl_(std::make_unique<Impl>(this)) {
  connect(&impl_->autosave_timer, &QTimer::timeout, this, [this] { write_autosave(); });
}

Workbench::~Workbench() {
  for (auto& [id, j] : impl_->jobs) j->control->cancel = true;
  for (auto& [id, j] : impl_->jobs)
    if (j->thread.joinable()) j->thread.join();
}

views::SnapshotPtr Workbench::snapshot() const { return impl_->current(); }
const sessions::SessionDocument& Workbench::document() const { return impl_->undo.current(); }
QString Workbench::capture_path() const { return QString::fromStdString(impl_->capture.path); }
sessions::RunConfig Workbench::current_config() const {
  return impl_->config_of(impl_->undo.current());
}
QString Workbench::session_path() const { return impl_->session_path; }

void Workbench::set_config(const sessions::RunConfig& config, const QString& label) {
  // An invalid configuration (unknown codec, bad parameter value) is refused here with its
  // message; the document stays as it was. Never throws (views call this from the event loop).
  try {
    (void)sessions::run_config_to_json(config);
  } catch (const Error& e) {
    emit message("error",
                 QString("Configuration refused (%1): [%2] %3")
                     .arg(label, QString::fromStdString(e.code()), QString::fromUtf8(e.what())));
    return;
  }
  sessions::SessionDocument next = impl_->undo.current();
  sessions::RunConfig c = config;
  std::sort(c.boundary.begin(), c.boundary.end());
  c.boundary.erase(std::unique(c.boundary.begin(), c.boundary.end()), c.boundary.end());
  next.boundary = c.boundary;
  bool found = false;
  for (auto& nc : next.configs)
    if (nc.name == next.current_config) {
      nc.config = c;
      found = true;
    }
  if (!found) {
    next.configs.push_back({kDefaultConfigName, c});
    next.current_config = kDefaultConfigName;
  }
  impl_->commit(std::move(next), label.isEmpty() ? QString("Change configuration") : label);
}

void Workbench::toggle_boundary(int layer) {
  std::vector<int> b = impl_->undo.current().boundary;
  auto it = std::find(b.begin(), b.end(), layer);
  QString label;
  if (it != b.end()) {
    b.erase(it);
    label = QString("Remove layer %1 from the boundary").arg(layer);
  } else {
    b.push_back(layer);
    label = QString("Keep layer %1 bf16 (boundary)").arg(layer);
  }
  std::sort(b.begin(), b.end());
  sessions::SessionDocument next = impl_->undo.current();
  next.boundary = b;
  for (auto& nc : next.configs)
    if (nc.name == next.current_config) nc.config.boundary = b;
  impl_->commit(std::move(next), label);
}

void Workbench::set_boundary(std::vector<int> layers) {
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  sessions::SessionDocument next = impl_->undo.current();
  next.boundary = layers;
  for (auto& nc : next.configs)
    if (nc.name == next.current_config) nc.config.boundary = layers;
  impl_->commit(
      std::move(next),
      QString("Set boundary layers to %1").arg(QString::fromStdString(boundary_text(layers))));
}

void Workbench::select(int layer, int kv_head) {
  if (impl_->selection.layer == layer && impl_->selection.kv_head == kv_head) return;
  impl_->selection = {layer, kv_head};
  impl_->publish();
}

void Workbench::add_sweep(const sessions::SessionSweep& sweep) {
  sessions::SessionDocument next = impl_->undo.current();
  int index = -1;
  for (size_t i = 0; i < next.sweeps.size(); ++i)
    if (next.sweeps[i].name == sweep.name) {
      next.sweeps[i] = sweep;
      index = static_cast<int>(i);
    }
  if (index < 0) {
    next.sweeps.push_back(sweep);
    index = static_cast<int>(next.sweeps.size()) - 1;
  }
  impl_->sweep_records.erase(sweep.name);
  impl_->load_records(sweep);
  impl_->active_sweep = index;
  const QString label = QString("Add sweep %1").arg(QString::fromStdString(sweep.name));
  if (next == impl_->undo.current())
    impl_->publish();
  else
    impl_->commit(std::move(next), label);
}

void Workbench::reload_sweep(int index) {
  const auto& sweeps = impl_->undo.current().sweeps;
  if (index < 0 || index >= static_cast<int>(sweeps.size())) return;
  impl_->load_records(sweeps[static_cast<size_t>(index)]);
  impl_->publish();
}

void Workbench::set_active_sweep(int index) {
  if (index == impl_->active_sweep) return;
  impl_->active_sweep = index;
  impl_->publish();
}

bool Workbench::can_undo() const { return impl_->undo.can_undo(); }
bool Workbench::can_redo() const { return impl_->undo.can_redo(); }

bool Workbench::undo() { return step_history(false); }
bool Workbench::redo() { return step_history(true); }

bool Workbench::step_history(bool forward) {
  const sessions::RunConfig before = current_config();
  if (!(forward ? impl_->undo.redo() : impl_->undo.undo())) return false;
  impl_->run_label = forward ? "redo " + redo_text() : "undo " + undo_text();
  std::vector<QString>& from = forward ? impl_->redo_labels : impl_->undo_labels;
  std::vector<QString>& to = forward ? impl_->undo_labels : impl_->redo_labels;
  if (!from.empty()) {
    to.push_back(from.back());
    from.pop_back();
  }
  impl_->after_change(before);
  return true;
}

QString Workbench::undo_text() const {
  return impl_->undo_labels.empty() || !can_undo() ? QString() : impl_->undo_labels.back();
}
QString Workbench::redo_text() const {
  return impl_->redo_labels.empty() || !can_redo() ? QString() : impl_->redo_labels.back();
}

bool Workbench::modified() const { return !(impl_->undo.current() == impl_->saved_doc); }
bool Workbench::run_is_partial() const { return impl_->run_partial; }
int Workbench::run_threads() { return Impl::threads(); }
int Workbench::thread_setting() { return Impl::thread_setting().load(); }
void Workbench::set_thread_setting(int threads) {
  Impl::thread_setting().store(std::clamp(threads, 0, sessions::kMaxThreads));
  impl_->publish();  // the backend label names the thread count
}
bool Workbench::result_cache_enabled() const { return impl_->cache_enabled; }
void Workbench::set_result_cache_enabled(bool on) { impl_->cache_enabled = on; }
sessions::ResultCache* Workbench::result_cache() const { return impl_->cache.get(); }

void Workbench::open_capture(const QString& path) {
  const std::string abs = QFileInfo(path).absoluteFilePath().toStdString();
  io::CaptureReader reader(abs);  // validates; throws naming the file
  views::CaptureSummary summary = summarize(reader.info(), abs);
  sessions::SessionDocument doc;
  doc.capture_path = abs;
  // RunConfig{} with the block size fitted to the capture (short captures are coded, not all tail).
  doc.configs.push_back({kDefaultConfigName, sessions::workbench_default_config(summary.tokens)});
  doc.current_config = kDefaultConfigName;
  impl_->session_path.clear();
  impl_->reset_document(std::move(doc), summary);
}

QStringList Workbench::open_session(const QString& path, bool accept_capture_change) {
  const std::string abs = QFileInfo(path).absoluteFilePath().toStdString();
  sessions::SessionLoadOptions opt;
  opt.accept_capture_change = accept_capture_change;
  sessions::SessionLoadResult r = sessions::load_session(abs, opt);
  QStringList warnings;
  for (const auto& w : r.warnings) warnings << QString::fromStdString(w);
  views::CaptureSummary summary;
  if (!r.doc.capture_path.empty() &&
      QFileInfo::exists(QString::fromStdString(r.doc.capture_path))) {
    io::CaptureReader reader(r.doc.capture_path);
    summary = summarize(reader.info(), r.doc.capture_path);
  } else {
    warnings << QString("%1: the capture %2 is missing; open it to run")
                    .arg(QString::fromStdString(abs), QString::fromStdString(r.doc.capture_path));
  }
  impl_->session_path = QString::fromStdString(abs);
  impl_->reset_document(std::move(r.doc), summary);
  return warnings;
}

void Workbench::save_session(const QString& path) {
  const std::string abs = QFileInfo(path).absoluteFilePath().toStdString();
  sessions::SessionDocument doc = impl_->undo.current();
  if (doc.capture_sha256.empty()) doc.capture_sha256 = impl_->capture_sha;
  sessions::save_session(abs, doc);
  impl_->session_path = QString::fromStdString(abs);
  impl_->saved_doc = impl_->undo.current();
  emit document_changed();
}

int Workbench::start_job(const QString& name, Work work) {
  return impl_->start(name, std::move(work));
}
void Workbench::cancel_job(int id) { impl_->cancel(id); }
void Workbench::cancel_all() { impl_->cancel_everything(); }

std::vector<JobInfo> Workbench::jobs() const {
  std::vector<JobInfo> out;
  for (const auto& [id, j] : impl_->jobs) out.push_back(j->info);
  return out;
}

bool Workbench::busy() const { return !impl_->jobs.empty(); }

bool Workbench::wait_idle(int timeout_ms) {
  QElapsedTimer clock;
  clock.start();
  QEventLoop loop;
  QTimer tick;
  tick.setInterval(10);
  // Idle = no job and the last snapshot handed out (snapshot_changed is emitted after the event).
  auto idle = [this] { return !busy() && !impl_->emit_pending; };
  auto check = [&] {
    if (idle() || clock.elapsed() >= timeout_ms) loop.quit();
  };
  connect(&tick, &QTimer::timeout, &loop, check);
  connect(this, &Workbench::jobs_changed, &loop, check, Qt::QueuedConnection);
  tick.start();
  if (!idle()) loop.exec();
  return idle();
}

int Workbench::start_sweep(const QString& name, const nlohmann::json& grid,
                           const QString& store_dir, bool resume) {
  return start_sweep(name, grid, store_dir, resume, sessions::EndToEndRequest{});
}

int Workbench::start_sweep(const QString& name, const nlohmann::json& grid,
                           const QString& store_dir, bool resume,
                           const sessions::EndToEndRequest& e2e) {
  if (impl_->capture.path.empty())
    throw InvalidArgument("no capture is open: open a capture before running a sweep");
  const std::string store = QFileInfo(store_dir).absoluteFilePath().toStdString();
  // Validate the grid here (InvalidArgument naming the cell) before anything is added.
  (void)sessions::expand_sweep_grid(grid, "sweep " + name.toStdString());
  sessions::SessionSweep sw;
  sw.name = name.toStdString();
  sw.store_path = store;
  sw.grid = grid;
  // The store folder exists from the start (empty until the first cell), so the sweep's records
  // load without a "no such directory" warning; run_sweep accepts an empty folder.
  std::error_code ec;
  std::filesystem::create_directories(store, ec);
  if (ec) throw IoError(store, "cannot create the sweep's store folder: " + ec.message());
  add_sweep(sw);
  const std::string capture = impl_->capture.path;
  const std::string sweep_name = sw.name;
  Workbench* wb = this;
  const uint64_t cap = impl_->capture_seq;
  auto post_records = [wb, sweep_name, cap](std::vector<json> records) {
    QMetaObject::invokeMethod(
        wb,
        [wb, sweep_name, cap, records = std::move(records)]() mutable {
          Impl& d = *wb->impl_;
          if (cap != d.capture_seq) return;
          d.sweep_records[sweep_name] = std::move(records);
          d.publish();
        },
        Qt::QueuedConnection);
  };
  auto read_records = [store]() -> std::vector<json> {
    try {
      return sessions::read_result_store(store).records;
    } catch (const Error&) {
      return {};
    }
  };
  std::shared_ptr<sessions::ResultCache> sweep_cache = impl_->cache_enabled ? impl_->cache : nullptr;
  return impl_->start("Sweep " + name,
                      [grid, store, capture, resume, post_records, read_records, e2e,
                       sweep_cache](JobControl& job) -> Continuation {
                        auto outer = job.progress;
                        auto last_reload = std::make_shared<int64_t>(0);
                        auto last_done = std::make_shared<size_t>(0);
                        job.progress = [outer, last_reload, last_done, post_records, read_records](
                                           size_t done, size_t total, const std::string& detail) {
                          if (outer) outer(done, total, detail);
                          const int64_t t = now_ms();
                          if (done != *last_done && t - *last_reload >= kSweepReloadMs) {
                            *last_done = done;
                            *last_reload = t;
                            post_records(read_records());
                          }
                        };
                        sessions::SweepOptions opt;
                        opt.jobs = Impl::threads();
                        opt.resume = resume;
                        opt.cache = sweep_cache.get();
                        std::unique_ptr<sessions::EndToEndAxes> axes;
                        if (!e2e.model_path.empty()) {
                          if (outer) outer(0, 0, "loading " + e2e.model_path + " (end-to-end axes)");
                          axes = sessions::load_end_to_end_axes(e2e);
                          opt.evaluator = axes->evaluator.get();
                          opt.e2e_settings = axes->settings;
                        }
                        try {
                          sessions::run_sweep(capture, grid, store, opt, &job);
                        } catch (...) {
                          post_records(read_records());  // finished cells stay stored: show them
                          throw;
                        }
                        post_records(read_records());
                        return {};
                      });
}

QString Workbench::default_store_dir(const QString& sweep_name) const {
  QString safe = sweep_name;
  for (QChar& c : safe)
    if (!c.isLetterOrNumber() && c != '-' && c != '_') c = '_';
  const QString stamp = QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss");
  QString base;
  if (!impl_->session_path.isEmpty()) {
    QFileInfo fi(impl_->session_path);
    QString stem = fi.fileName();
    if (stem.endsWith(".kvwb.json")) stem.chop(10);
    base = fi.absolutePath() + "/" + stem + ".sweeps";
  } else {
    base = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/sweeps";
  }
  QString dir = base + "/" + safe + "-" + stamp;
  for (int i = 2; QFileInfo::exists(dir); ++i)
    dir = base + "/" + safe + "-" + stamp + "-" + QString::number(i);
  return dir;
}

void Workbench::run_current() {
  // F5 / Run ▸ Run configuration: always runs (the new result replaces a held one).
  impl_->run_label = "rerun";
  impl_->start_run(true);
}

std::vector<views::RunEntryPtr> Workbench::history() const { return impl_->history; }
views::RunEntryPtr Workbench::baseline() const { return impl_->baseline; }

bool Workbench::recall(uint64_t run_id) {
  const views::RunEntryPtr e = impl_->find_entry(run_id);
  if (!e) return false;
  if (e->config_key != config_key(current_config())) {
    set_config(*e->config,
               QString("Recall run #%1 (%2)").arg(e->id).arg(QString::fromStdString(e->label)));
    return true;
  }
  // Already the current configuration: show the held result (or run it when it was trimmed).
  if (!e->has_residuals) {
    impl_->start_run();
    return true;
  }
  if (impl_->run_job) impl_->cancel(impl_->run_job);
  ++impl_->run_seq;
  impl_->run_job = 0;
  impl_->show_entry(*e);
  impl_->publish();
  return true;
}

bool Workbench::pin_baseline(uint64_t run_id) {
  const views::RunEntryPtr e = impl_->find_entry(run_id);
  if (!e) return false;
  auto b = std::make_shared<views::RunEntry>(*e);
  b->selection = impl_->selection;
  impl_->baseline = b;
  impl_->publish();
  emit message(
      "info",
      QString("Baseline pinned: run #%1 (%2)").arg(b->id).arg(QString::fromStdString(b->label)));
  return true;
}

bool Workbench::pin_current_as_baseline() {
  if (!impl_->run || impl_->run_partial || !impl_->run_is_current || impl_->run_id == 0)
    return false;
  return pin_baseline(impl_->run_id);
}

int Workbench::pin_baseline_config(const sessions::RunConfig& config, const QString& label) {
  if (impl_->capture.path.empty()) {
    emit message("error", "Pin baseline: no capture is open");
    return -1;
  }
  const std::string key = config_key(config);
  if (key.empty()) {
    emit message("error", "Pin baseline: the configuration of " + label + " is invalid");
    return -1;
  }
  if (const views::RunEntry* e = impl_->find_key(key)) {
    pin_baseline(e->id);
    return 0;
  }
  return impl_->start_baseline_run(config, key, label);
}

void Workbench::clear_baseline() {
  if (impl_->baseline_job) impl_->cancel(impl_->baseline_job);
  impl_->baseline.reset();
  impl_->baseline_pending.clear();
  impl_->publish();
}

int Workbench::focused_job() const {
  int best = 0;
  for (const auto& [id, j] : impl_->jobs)
    if (!j->info.cancelling) best = std::max(best, id);
  return best;
}
void Workbench::run_analysis() { impl_->start_analysis(); }

// ---- autosave ----
QString Workbench::autosave_path() const { return impl_->autosave_path; }
void Workbench::set_autosave_path(const QString& path) { impl_->autosave_path = path; }
void Workbench::set_autosave_enabled(bool on) {
  impl_->autosave_enabled = on;
  if (!on) impl_->autosave_timer.stop();
}
bool Workbench::autosave_exists() const { return QFileInfo::exists(impl_->autosave_path); }

bool Workbench::write_autosave() {
  if (impl_->autosave_path.isEmpty() || impl_->capture.path.empty()) return false;
  sessions::SessionDocument doc = impl_->undo.current();
  if (doc.capture_sha256.empty()) doc.capture_sha256 = impl_->capture_sha;
  doc.view_state["shell"]["session_path"] = impl_->session_path.toStdString();
  try {
    QDir().mkpath(QFileInfo(impl_->autosave_path).absolutePath());
    if (doc.capture_sha256.empty()) {
      // Not pinned yet (no run finished): write without hashing the capture on the UI thread.
      nlohmann::json j = sessions::session_to_json(doc, impl_->autosave_path.toStdString());
      io::write_file_atomic(impl_->autosave_path.toStdString(), j.dump(2) + "\n");
    } else {
      sessions::save_session(impl_->autosave_path.toStdString(), doc);
    }
    return true;
  } catch (const std::exception& e) {
    emit message("warning", QString("Autosave failed: %1").arg(QString::fromUtf8(e.what())));
    return false;
  }
}

void Workbench::remove_autosave() {
  impl_->autosave_timer.stop();
  if (!impl_->autosave_path.isEmpty()) QFile::remove(impl_->autosave_path);
}

QStringList Workbench::recover_autosave() {
  QStringList warnings = open_session(impl_->autosave_path, true);
  // Restore the session the autosave was made from (Save writes there again) and mark modified.
  sessions::SessionDocument doc = impl_->undo.current();
  QString origin;
  if (doc.view_state.contains("shell")) {
    origin = QString::fromStdString(doc.view_state["shell"].value("session_path", std::string()));
    doc.view_state.erase("shell");
  }
  impl_->undo = sessions::UndoStack(doc);
  impl_->saved_doc = sessions::SessionDocument{};
  impl_->session_path = origin;
  impl_->publish();
  emit document_changed();
  return warnings;
}

}  // namespace kvwb::app
