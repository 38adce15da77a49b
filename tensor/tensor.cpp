#include "attnlab/tensor/tensor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>
#include <type_traits>

#include "attnlab/tensor/kernels/kernels.hpp"

namespace attnlab {
namespace {

// Visits every element of a strided view in row-major order, calling
// fn(linear_index, element_offset). The inner axis runs as a plain loop.
template <typename Fn>
void for_each_offset(const Shape& shape, const Shape& strides, int64_t offset, Fn&& fn) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const size_t nd = shape.size();
  if (nd == 0) {
    fn(0, offset);
    return;
  }
  std::vector<int64_t> index(nd, 0);
  const int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  int64_t base = offset;
  for (int64_t linear = 0; linear < n; linear += inner) {
    for (int64_t i = 0; i < inner; ++i) fn(linear + i, base + i * inner_stride);
    // Carry the index over the outer axes.
    for (size_t ax = nd - 1; ax-- > 0;) {
      base += strides[ax];
      if (++index[ax] < shape[ax]) break;
      base -= strides[ax] * shape[ax];
      index[ax] = 0;
    }
  }
}

}  // namespace

Tensor::Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Shape strides,
               int64_t offset)
    : storage_(std::move(storage)),
      dtype_(dtype),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset) {}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape) ATTN_CHECK(s >= 0, "negative size in shape {}", shape_str(shape));
  auto storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype));
  return Tensor(std::move(storage), dtype, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.storage_->data(), 0, t.numel() * dtype_size(dtype));
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) {
  return full(shape, 1.0, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) {
  return full({}, value, dtype);
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

template <typename T>
Tensor Tensor::from_data(const Shape& shape, std::span<const T> values) {
  ATTN_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
             "from_data: {} values for shape {} ({} elements)", values.size(), shape_str(shape),
             shape_numel(shape));
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor Tensor::from_data<float>(const Shape&, std::span<const float>);
template Tensor Tensor::from_data<double>(const Shape&, std::span<const double>);

Tensor Tensor::from_data(const Shape& shape, std::initializer_list<double> values, DType dtype) {
  Tensor t = from_data<double>(shape, std::span<const double>(values.begin(), values.size()));
  return dtype == DType::F64 ? t : t.to(dtype);
}

Tensor Tensor::normal(const Shape& shape, Rng& rng, double mean, double stddev, DType dtype) {
  Tensor t = empty(shape, dtype);
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(mean + stddev * rng.normal());
  });
  return t;
}

Tensor Tensor::uniform(const Shape& shape, Rng& rng, double low, double high, DType dtype) {
  Tensor t = empty(shape, dtype);
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = static_cast<T>(low + (high - low) * rng.uniform());
  });
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  return shape_[normalize_axis(axis, dim())];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Tensor Tensor::view(const Shape& shape) const {
  ATTN_CHECK(is_contiguous(), "view {} of a non-contiguous tensor of shape {}: call contiguous()",
             shape_str(shape), shape_str(shape_));
  Shape resolved = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      ATTN_CHECK(infer < 0, "view {}: only one axis may be -1", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      ATTN_CHECK(resolved[i] >= 0, "view {}: negative size", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    ATTN_CHECK(known > 0 && numel() % known == 0, "cannot view shape {} as {}", shape_str(shape_),
               shape_str(shape));
    resolved[infer] = numel() / known;
  }
  ATTN_CHECK(shape_numel(resolved) == numel(), "cannot view shape {} ({} elements) as {}",
             shape_str(shape_), numel(), shape_str(shape));
  return Tensor(storage_, dtype_, resolved, contiguous_strides(resolved), offset_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  ATTN_CHECK(static_cast<int64_t>(order.size()) == dim(),
             "permute of a {}-d tensor needs {} axes, got {}", dim(), dim(), order.size());
  Shape shape(order.size()), strides(order.size());
  std::vector<bool> seen(order.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t ax = normalize_axis(order[i], dim());
    ATTN_CHECK(!seen[ax], "permute: axis {} appears twice", ax);
    seen[ax] = true;
    shape[i] = shape_[ax];
    strides[i] = strides_[ax];
  }
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, dim())], order[normalize_axis(b, dim())]);
  return permute(order);
}

Tensor Tensor::narrow(int64_t axis, int64_t start, int64_t length) const {
  axis = normalize_axis(axis, dim());
  ATTN_CHECK(start >= 0 && length >= 0 && start + length <= shape_[axis],
             "narrow [{}, {}) is out of range for axis {} of shape {}", start, start + length, axis,
             shape_str(shape_));
  Shape shape = shape_;
  shape[axis] = length;
  return Tensor(storage_, dtype_, shape, strides_, offset_ + start * strides_[axis]);
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  axis = normalize_axis(axis, dim());
  ATTN_CHECK(index >= 0 && index < shape_[axis], "select index {} out of range for axis {} of {}",
             index, axis, shape_str(shape_));
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + axis);
  strides.erase(strides.begin() + axis);
  return Tensor(storage_, dtype_, shape, strides, offset_ + index * strides_[axis]);
}

Tensor Tensor::expand(const Shape& shape) const {
  ATTN_CHECK(shape.size() >= shape_.size(), "cannot expand shape {} to {}", shape_str(shape_),
             shape_str(shape));
  const size_t lead = shape.size() - shape_.size();
  Shape strides(shape.size(), 0);
  for (size_t i = 0; i < shape_.size(); ++i) {
    const int64_t want = shape[lead + i];
    if (shape_[i] == want) {
      strides[lead + i] = strides_[i];
    } else {
      ATTN_CHECK(shape_[i] == 1, "cannot expand shape {} to {}", shape_str(shape_),
                 shape_str(shape));
    }
  }
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  axis = normalize_axis(axis, dim() + 1);
  Shape shape = shape_, strides = strides_;
  const int64_t stride = axis < dim() ? strides_[axis] * shape_[axis] : 1;
  shape.insert(shape.begin() + axis, 1);
  strides.insert(strides.begin() + axis, stride);
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::squeeze(int64_t axis) const {
  axis = normalize_axis(axis, dim());
  ATTN_CHECK(shape_[axis] == 1, "squeeze: axis {} of shape {} is not 1", axis, shape_str(shape_));
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + axis);
  strides.erase(strides.begin() + axis);
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_);
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& src) {
  ATTN_CHECK(defined() && src.defined(), "copy_ with an undefined tensor");
  const Tensor s = src.shape_ == shape_ ? src : src.expand(shape_);
  if (numel() == 0) return;
  // A source that shares our storage could be overwritten before it is read
  // (x.copy_(x.transpose(0, 1))): copy it out first.
  if (s.storage_ == storage_) {
    copy_(s.clone());
    return;
  }
  // Both views as rows of one merged shape (tensor/kernels/kernels.hpp): a
  // transposed or narrowed view is rows of a strided run, a contiguous pair
  // is one long row. Rows are split among threads; each element is written
  // once, so any split gives the same result.
  const auto rows = kernels::merge_axes<2>(shape_, {strides_, s.strides_});
  const int64_t inner = rows.inner();
  const int64_t dst_step = rows.strides[0].back(), src_step = rows.strides[1].back();
  dispatch_dtype(dtype_, [&]<typename TD>() {
    dispatch_dtype(s.dtype_, [&]<typename TS>() {
      const TS* sp = static_cast<const TS*>(s.storage_->data()) + s.offset_;
      TD* dp = static_cast<TD*>(storage_->data()) + offset_;
      auto copy_run = [&](TD* to, const TS* from, int64_t n) {
        if constexpr (std::is_same_v<TD, TS>) {
          if (dst_step == 1 && src_step == 1) {
            std::memcpy(to, from, static_cast<size_t>(n) * sizeof(TD));
            return;
          }
        }
        for (int64_t i = 0; i < n; ++i) to[i * dst_step] = static_cast<TD>(from[i * src_step]);
      };
      if (rows.rows() == 1) {  // one run: split it into blocks
        kernels::parallel_blocks(inner, kernels::kBlockElements, 1, [&](int64_t i0, int64_t i1) {
          copy_run(dp + i0 * dst_step, sp + i0 * src_step, i1 - i0);
        });
        return;
      }
      kernels::parallel_blocks(
          rows.rows(), kernels::rows_per_block(inner), inner, [&](int64_t r0, int64_t r1) {
            kernels::for_each_row(
                rows, r0, r1, [&](const auto& off) { copy_run(dp + off[0], sp + off[1], inner); });
          });
    });
  });
}

void Tensor::fill_(double value) {
  dispatch_dtype(dtype_, [&]<typename T>() {
    T* p = static_cast<T*>(storage_->data());
    const T v = static_cast<T>(value);
    for_each_offset(shape_, strides_, offset_, [&](int64_t, int64_t off) { p[off] = v; });
  });
}

double Tensor::item() const {
  ATTN_CHECK(numel() == 1, "item() of a tensor of shape {}: it must hold exactly one value",
             shape_str(shape_));
  return dispatch_dtype(dtype_, [&]<typename T>() { return static_cast<double>(*data<T>()); });
}

double Tensor::at(const std::vector<int64_t>& index) const {
  ATTN_CHECK(static_cast<int64_t>(index.size()) == dim(), "at: {} indices for a {}-d tensor",
             index.size(), dim());
  int64_t off = offset_;
  for (size_t i = 0; i < index.size(); ++i) {
    ATTN_CHECK(index[i] >= 0 && index[i] < shape_[i], "at: index {} out of range for axis {} of {}",
               index[i], i, shape_str(shape_));
    off += index[i] * strides_[i];
  }
  return dispatch_dtype(dtype_, [&]<typename T>() {
    return static_cast<double>(static_cast<const T*>(storage_->data())[off]);
  });
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out(numel());
  dispatch_dtype(dtype_, [&]<typename T>() {
    const T* p = static_cast<const T*>(storage_->data());
    for_each_offset(shape_, strides_, offset_, [&](int64_t i, int64_t off) { out[i] = p[off]; });
  });
  return out;
}

std::string Tensor::str(int64_t max_per_axis) const {
  if (!defined()) return "Tensor(undefined)";
  const std::vector<double> v = to_vector();
  std::ostringstream os;
  // Recursive printer: elides the middle of long axes with "...".
  auto print = [&](auto&& self, size_t axis, int64_t base) -> void {
    if (axis == shape_.size()) {
      os << fmt::format("{:.6g}", v[base]);
      return;
    }
    const int64_t n = shape_[axis];
    const int64_t inner = shape_numel(Shape(shape_.begin() + axis + 1, shape_.end()));
    os << '[';
    for (int64_t i = 0; i < n; ++i) {
      if (n > max_per_axis && i == max_per_axis / 2) {
        os << "..., ";
        i = n - max_per_axis / 2;
      }
      self(self, axis + 1, base + i * inner);
      if (i + 1 < n) os << (axis + 1 == shape_.size() ? ", " : ",\n ");
    }
    os << ']';
  };
  if (numel() > 0)
    print(print, 0, 0);
  else
    os << "[]";
  os << fmt::format(" ({} {})", dtype_name(dtype_), shape_str(shape_));
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  ATTN_CHECK(a.shape() == b.shape(), "{}: shapes {} and {} differ", what, shape_str(a.shape()),
             shape_str(b.shape()));
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* what) {
  ATTN_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ", what, dtype_name(a.dtype()),
             dtype_name(b.dtype()));
}

}  // namespace attnlab
