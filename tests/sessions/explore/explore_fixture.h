#pragma once
// Inputs shared by the explore tests (sweeps, the result store, the cluster paths).
#include <nlohmann/json.hpp>

#include "tests/sessions/demo_fixture.h"

namespace kvwb::test {

/// The six-cell grid: kakeya_pca K at b = 1, 2, 3 × variance_ratio 0.9, 1.0; block 128, V q8_0.
inline nlohmann::json six_cell_grid() {
  return nlohmann::json{{"k_codec", {"kakeya_pca"}},
                        {"bits_k", {1, 2, 3}},
                        {"variance_ratio", {0.9, 1.0}},
                        {"fixed", {{"block_size", 128}, {"v_codec", "q8_0"}}}};
}

}  // namespace kvwb::test
