// Shapes and strides. A shape lists the size of each axis, outermost first; a
// stride says how many elements to step in memory to move one along that axis.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

// Row-major ("C") strides: the last axis is contiguous.
Shape contiguous_strides(const Shape& shape);

// numpy broadcasting: align trailing axes; each pair must be equal or contain a 1.
// Throws an Error naming both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Wraps a possibly negative axis index into [0, ndim) or throws.
int64_t normalize_axis(int64_t axis, int64_t ndim);

}  // namespace attnlab
