#pragma once
// The message of the error a call throws, for tests that check the exact words (plain C++: no
// GoogleTest, so any test binary can use it).
#include <string>

namespace kvwb::test {

/// what() of the `Err` that `f` throws; "<no error>" when it returns normally (an exception of
/// another type propagates).
template <class Err, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Err& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace kvwb::test
