// The result cache (issue 13 item 1): a boundary toggle runs exactly one layer's streams through
// the executor (counted by a wrapper), results are identical with and without the cache, the
// disk tier is shared between cache instances (processes), bounded, and survives corrupt entries.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "codec/executor.h"
#include "sessions/run/result_cache.h"
#include "sessions/run/runner.h"
#include "tests/sessions/demo_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using namespace kvwb::sessions;

namespace {

const std::string& demo_path() { return kvwb::test::small_demo_capture("cache_demo.kvc.h5", 32, 96); }

/// Counts the executor calls and the (layer, stream) units they ran.
class CountingExecutor : public codec::Executor {
 public:
  CountingExecutor() : inner_(codec::make_executor("cpu", {2})) {}
  std::string_view name() const override { return inner_->name(); }
  codec::BatchResult run(const codec::BatchRequest& r, const std::atomic<bool>* cancel) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      units_.emplace_back(static_cast<int>(r.layer), r.stream == codec::Stream::kK ? 'K' : 'V');
    }
    return inner_->run(r, cancel);
  }
  std::vector<std::pair<int, char>> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(units_, {});
  }

 private:
  std::unique_ptr<codec::Executor> inner_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<int, char>> units_;
};

/// A result cache and a counting executor, both wired into the run options `with` (what one
/// process running with the cache sees).
struct CountedCache {
  explicit CountedCache(ResultCacheOptions o = {}) : cache(std::move(o)) {
    with.cache = &cache;
    with.executor = &exec;
  }
  ResultCache cache;
  CountingExecutor exec;
  RunOptions with;
};

/// The result JSON without the wall time.
nlohmann::json comparable(const RunResult& r) {
  nlohmann::json j = run_result_to_json(r);
  j.erase("seconds");
  return j;
}

RunConfig demo_config() {
  RunConfig c;
  c.block_size = 32;
  c.threads = 2;
  return c;
}

}  // namespace

TEST(ResultCache, BoundaryToggleRunsExactlyOneLayer) {
  CountedCache r;
  RunConfig a = demo_config();
  const RunResult ra = run_config(demo_path(), a, r.with);
  EXPECT_EQ(r.exec.take().size(), 6u);  // 3 layers × K, V
  EXPECT_EQ(ra.layers_from_cache, 0u);

  // Toggle layer 1 to bf16: that layer alone is recomputed (a boundary layer needs no codec).
  RunConfig b = a;
  b.boundary = {1};
  const RunResult rb = run_config(demo_path(), b, r.with);
  EXPECT_TRUE(r.exec.take().empty());
  EXPECT_EQ(rb.layers_from_cache, 2u);
  EXPECT_EQ(rb.executor_streams, 0u);

  // Back to the first configuration: everything from the cache.
  const RunResult ra2 = run_config(demo_path(), a, r.with);
  EXPECT_TRUE(r.exec.take().empty());
  EXPECT_EQ(ra2.layers_from_cache, 3u);
  EXPECT_EQ(comparable(ra2), comparable(ra));

  // From boundary {0, 2} to {2} in a fresh cache: layer 0 is coded for the first time; exactly
  // its K and V run.
  ResultCache fresh({});
  r.with.cache = &fresh;
  RunConfig c = a;
  c.boundary = {0, 2};
  (void)run_config(demo_path(), c, r.with);
  EXPECT_EQ(r.exec.take().size(), 2u);  // layer 1
  RunConfig d = a;
  d.boundary = {2};
  const RunResult rd = run_config(demo_path(), d, r.with);
  const auto units = r.exec.take();
  const std::set<std::pair<int, char>> got(units.begin(), units.end());
  EXPECT_EQ(units.size(), 2u);
  EXPECT_EQ(got, (std::set<std::pair<int, char>>{{0, 'K'}, {0, 'V'}}));
  EXPECT_EQ(rd.layers_from_cache, 2u);

  // Identical to a run without the cache.
  RunOptions without;
  EXPECT_EQ(comparable(run_config(demo_path(), b, without)), comparable(rb));
  EXPECT_EQ(comparable(run_config(demo_path(), d, without)), comparable(rd));
}

TEST(ResultCache, WithoutAttentionMetricsOneStreamChangeRunsOnlyThatStream) {
  CountedCache r;
  RunConfig a = demo_config();
  a.attention_metrics = false;
  (void)run_config(demo_path(), a, r.with);
  r.exec.take();
  RunConfig b = a;
  b.v = StreamConfig{"q8_0", {}, {}, ""};
  const RunResult rb = run_config(demo_path(), b, r.with);
  const auto units = r.exec.take();
  ASSERT_EQ(units.size(), 3u);
  for (const auto& u : units) EXPECT_EQ(u.second, 'V');
  EXPECT_EQ(comparable(rb), comparable(run_config(demo_path(), b, RunOptions{})));
}

TEST(ResultCache, SettingsThatChangeResultsChangeTheKey) {
  CountedCache r;
  RunConfig a = demo_config();
  (void)run_config(demo_path(), a, r.with);
  r.exec.take();
  // Codec parameter, block size, Σ_q preconditioning, residual collection: all recompute.
  RunConfig p = a;
  p.k.params["bit_width"] = "2";
  (void)run_config(demo_path(), p, r.with);
  EXPECT_EQ(r.exec.take().size(), 6u);  // a new K needs V's reconstruction for attention metrics
  RunConfig bs = a;
  bs.block_size = 16;
  (void)run_config(demo_path(), bs, r.with);
  EXPECT_EQ(r.exec.take().size(), 6u);
  RunConfig q = a;
  q.q_precond = "capture";
  const RunResult rq = run_config(demo_path(), q, r.with);
  EXPECT_EQ(r.exec.take().size(), 6u);  // K whitened, V shares the layer's attention entry
  EXPECT_EQ(comparable(rq), comparable(run_config(demo_path(), q, RunOptions{})));
  RunOptions residuals = r.with;
  residuals.collect_residuals = true;
  (void)run_config(demo_path(), a, residuals);
  EXPECT_EQ(r.exec.take().size(), 6u);
  // ... but only for a codec that reports residuals: a peer's entries made without them (a
  // sweep) serve a run that collects them (the GUI), and a Kakeya stream beside it is recomputed.
  RunConfig peers = a;
  peers.k = StreamConfig{"q8_0", {}, {}, ""};
  peers.v = StreamConfig{"turbo3", {}, {}, ""};
  (void)run_config(demo_path(), peers, r.with);
  EXPECT_EQ(r.exec.take().size(), 6u);
  const RunResult rp = run_config(demo_path(), peers, residuals);
  EXPECT_TRUE(r.exec.take().empty());
  EXPECT_EQ(rp.layers_from_cache, 3u);
  RunOptions uncached_residuals;
  uncached_residuals.collect_residuals = true;
  EXPECT_EQ(comparable(rp), comparable(run_config(demo_path(), peers, uncached_residuals)));
  RunConfig mixed = peers;
  mixed.v = a.v;  // kakeya_pca
  (void)run_config(demo_path(), mixed, r.with);
  r.exec.take();
  (void)run_config(demo_path(), mixed, residuals);
  EXPECT_EQ(r.exec.take().size(), 6u);  // V's residuals are needed; the layer is recomputed whole
  // The thread count is not part of the key (results never depend on it).
  RunConfig t = a;
  t.threads = 1;
  (void)run_config(demo_path(), t, r.with);
  EXPECT_TRUE(r.exec.take().empty());
}

TEST(ResultCache, DiskTierIsSharedBoundedAndSurvivesCorruptEntries) {
  kvwb::test::TempDir dir;
  ResultCacheOptions o;
  o.dir = dir.file("cache");
  const RunConfig a = demo_config();
  RunResult first;
  {
    ResultCache cache(o);
    RunOptions with;
    with.cache = &cache;
    first = run_config(demo_path(), a, with);
  }
  size_t files = 0;
  std::string one;
  for (const auto& e : std::filesystem::recursive_directory_iterator(o.dir))
    if (e.is_regular_file() && e.path().extension() == ".kvwbrc") {  // not the digest memo
      ++files;
      one = e.path().string();
    }
  EXPECT_EQ(files, 9u);  // per layer: K, V, both-compressed attention
  {
    // A second instance (another process) with an empty memory tier reuses the disk entries.
    CountedCache r(o);
    const RunResult again = run_config(demo_path(), a, r.with);
    EXPECT_TRUE(r.exec.take().empty());
    EXPECT_EQ(r.cache.stats().disk_hits, 9u);
    EXPECT_EQ(comparable(again), comparable(first));
  }
  {
    // A corrupt entry is a miss: its layer is recomputed and the results stay identical.
    std::fstream f(one, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
    f.close();
    CountedCache r(o);
    const RunResult again = run_config(demo_path(), a, r.with);
    EXPECT_EQ(r.exec.take().size(), 2u);
    EXPECT_EQ(r.cache.stats().misses, 1u);
    EXPECT_EQ(comparable(again), comparable(first));
  }
  {
    // Bounded: with a bound below the entries' size, the oldest are evicted on the next store.
    ResultCacheOptions small = o;
    small.disk_bytes = 4096;
    small.memory_bytes = 0;
    ResultCache cache(small);
    cache.put(std::string(64, 'a'), std::string(1000, 'x'));
    uint64_t total = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(o.dir))
      if (e.is_regular_file() && e.path().extension() == ".kvwbrc") total += e.file_size();
    EXPECT_LE(total, small.disk_bytes);
    EXPECT_GT(cache.stats().evicted, 0u);
  }
}

TEST(ResultCache, MemoryTierIsBounded) {
  ResultCacheOptions o;
  o.memory_bytes = 2500;
  ResultCache cache(o);
  for (char c : std::string("abcd")) cache.put(std::string(64, c), std::string(1000, c));
  EXPECT_FALSE(cache.get(std::string(64, 'a')));  // least recently used, evicted
  EXPECT_FALSE(cache.get(std::string(64, 'b')));
  EXPECT_EQ(cache.get(std::string(64, 'd')).value_or(""), std::string(1000, 'd'));
}

TEST(ResultCache, RealTiny1mIdenticalWithAndWithoutTheCache) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  RunConfig c = workbench_default_config(256);
  c.q_precond = "capture";
  c.boundary = {0};
  c.threads = 2;
  ResultCache cache({});
  RunOptions with;
  with.cache = &cache;
  const RunResult plain = run_config(path, c, RunOptions{});
  const RunResult cold = run_config(path, c, with);
  const RunResult warm = run_config(path, c, with);
  EXPECT_EQ(warm.layers_from_cache, plain.layers.size());
  EXPECT_EQ(comparable(cold), comparable(plain));
  EXPECT_EQ(comparable(warm), comparable(plain));
  EXPECT_EQ(run_result_to_csv(warm), run_result_to_csv(plain));
}
