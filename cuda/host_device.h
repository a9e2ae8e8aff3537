// TF_HOST_DEVICE: a function that the C++ (.cpp) and CUDA (.cu) twins of an op both compile.
#pragma once

#ifdef __CUDACC__
#define TF_HOST_DEVICE __host__ __device__
#else
#define TF_HOST_DEVICE
#endif
