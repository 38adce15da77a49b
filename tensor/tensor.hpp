// Tensor: an n-dimensional array of f32 or f64.
//
// A Tensor is a view: a shape, strides (in elements) and an offset into a
// Storage that other views may share. Reshaping contiguous data, permuting,
// transposing, narrowing and expanding make new views of the same memory and
// copy nothing; contiguous() and clone() are the explicit ways to copy.
// Tensor knows nothing of gradients (that is autograd/'s job).
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "attnlab/tensor/dtype.hpp"
#include "attnlab/tensor/random.hpp"
#include "attnlab/tensor/shape.hpp"
#include "attnlab/tensor/storage.hpp"

namespace attnlab {

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false

  // --- creation (always contiguous) ---
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);  // uninitialised
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  static Tensor scalar(double value, DType dtype = DType::F32);  // shape []
  static Tensor arange(int64_t n, DType dtype = DType::F32);     // 0, 1, ..., n-1
  template <typename T>
  static Tensor from_data(const Shape& shape, std::span<const T> values);
  static Tensor from_data(const Shape& shape, std::initializer_list<double> values,
                          DType dtype = DType::F32);
  static Tensor normal(const Shape& shape, Rng& rng, double mean = 0.0, double stddev = 1.0,
                       DType dtype = DType::F32);
  static Tensor uniform(const Shape& shape, Rng& rng, double low = 0.0, double high = 1.0,
                        DType dtype = DType::F32);

  // --- what it is ---
  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Pointer to the first element (offset applied). Throws if T is not the dtype.
  template <typename T>
  T* data() const;

  // --- views: no copy ---
  Tensor view(const Shape& shape) const;     // contiguous data only; one axis may be -1
  Tensor reshape(const Shape& shape) const;  // a view when contiguous, else a copy
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t axis, int64_t start, int64_t length) const;
  Tensor select(int64_t axis, int64_t index) const;  // drops the axis
  Tensor expand(const Shape& shape) const;           // broadcast: size-1 axes get stride 0
  Tensor unsqueeze(int64_t axis) const;
  Tensor squeeze(int64_t axis) const;

  // --- copies ---
  Tensor contiguous() const;  // *this when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  void copy_(const Tensor& src);  // same shape (src may broadcast); converts dtype
  void fill_(double value);

  // --- reading values (slow; for tests, printing and scalars) ---
  double item() const;  // a tensor of one element
  double at(const std::vector<int64_t>& index) const;
  std::vector<double> to_vector() const;  // logical (row-major) order
  std::string str(int64_t max_per_axis = 6) const;

 private:
  Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Shape strides, int64_t offset);
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Throws an Error naming both shapes unless a and b have the same shape.
void check_same_shape(const Tensor& a, const Tensor& b, const char* what);
// Throws unless a and b have the same dtype.
void check_same_dtype(const Tensor& a, const Tensor& b, const char* what);

template <typename T>
T* Tensor::data() const {
  ATTN_CHECK(defined(), "data() of an undefined tensor");
  ATTN_CHECK(dtype_ == dtype_of<T>(), "tensor holds {}, not {}", dtype_name(dtype_),
             dtype_name(dtype_of<T>()));
  return static_cast<T*>(storage_->data()) + offset_;
}

}  // namespace attnlab
