// Loss by position: the mean cross-entropy at each position t = 0 … T−1 of
// a context, over fixed evaluation windows. A model that uses its context
// predicts later tokens better (the curve falls with t); past the length it
// was trained on (length generalisation) the curve shows where it breaks.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/train/dataset.hpp"

namespace attnlab {

// Mean over the batches' rows of −log p(target | inputs[0..t]) at each t
// (nats per token), with the model in eval mode and no tape. Every batch has
// the same T, which the model's max_seq_len must allow. on_batch(done, total)
// is called after each batch, if given (a caller's progress display).
std::vector<double> loss_by_position(
    LanguageModel& model, const std::vector<Batch>& batches,
    const std::function<void(int64_t done, int64_t total)>& on_batch = {});

// The config with its context stretched to seq_len tokens when that is longer
// (RoPE rotates any position and no weight depends on max_seq_len, so the same
// weights load): for evaluating a model beyond the length it was trained on.
ModelConfig with_context_of_at_least(ModelConfig config, int64_t seq_len);

}  // namespace attnlab
