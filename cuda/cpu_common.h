// Small helpers shared by the CPU sources of the native core.
#pragma once

#include <cstdint>

namespace tf {

// Rays per parallel task: enough work per task that scheduling costs nothing.
constexpr int64_t kRaysPerTask = 256;

}  // namespace tf
