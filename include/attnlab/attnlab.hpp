// attnlab in one include: tensors, autograd, the layers, the models and the
// training pieces. A program can also include only the headers it uses,
// each by its layer: <attnlab/tensor/tensor.hpp>, <attnlab/nn/linear.hpp>, ...
// Link attnlab::attnlab (CMake) or `pkg-config --libs attnlab`.
#pragma once

#include "attnlab/version.hpp"

// tensor/: storage, shapes and dtypes, the kernels, the thread pool.
#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/ops.hpp"
#include "attnlab/tensor/random.hpp"
#include "attnlab/tensor/tensor.hpp"
#include "attnlab/tensor/threads.hpp"

// autograd/: Variables that record a graph, their ops, gradient checks.
#include "attnlab/autograd/gradcheck.hpp"
#include "attnlab/autograd/ops.hpp"
#include "attnlab/autograd/variable.hpp"

// nn/: modules.
#include "attnlab/nn/embedding.hpp"
#include "attnlab/nn/feed_forward.hpp"
#include "attnlab/nn/grouped_query_attention.hpp"
#include "attnlab/nn/linear.hpp"
#include "attnlab/nn/mixture_of_experts.hpp"
#include "attnlab/nn/module.hpp"
#include "attnlab/nn/multi_latent_attention.hpp"
#include "attnlab/nn/rms_norm.hpp"
#include "attnlab/nn/rotary_embedding.hpp"
#include "attnlab/nn/transformer_block.hpp"

// models/: the language model of MODEL-SPEC.md, its checkpoints, the decoder.
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/config.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/models/sampling.hpp"

// train/: data, tokenizer, optimizer, schedule, the training loop.
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/bundled_data.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/grad_clip.hpp"
#include "attnlab/train/lr_schedule.hpp"
#include "attnlab/train/tokenizer.hpp"
#include "attnlab/train/trainer.hpp"
