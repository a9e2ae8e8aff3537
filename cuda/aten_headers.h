// The part of ATen the native sources use. torch/extension.h (pybind11 and the C++ frontend)
// makes a file compile three to four times slower, under nvcc most of all; only bindings.cpp,
// which makes the Python module, needs it.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
