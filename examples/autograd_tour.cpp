// A first tour of attnlab's autograd: build a small computation on the tape,
// call backward(), read the gradients, and let gradcheck confirm them.
//
// Then fit a tiny model — a line y = w·x + b — by gradient descent, the
// smallest possible "training loop".
#include <fmt/format.h>

#include "attnlab/autograd/gradcheck.hpp"
#include "attnlab/autograd/ops.hpp"

using namespace attnlab;

int main() {
  // 1. A computation: L = sum(tanh(x · W) ⊙ x · W)  — an op used twice.
  Rng rng(0);
  Variable x(Tensor::normal({2, 3}, rng, 0, 1, DType::F64), /*requires_grad=*/true);
  Variable w(Tensor::normal({3, 3}, rng, 0, 1, DType::F64), true);
  Variable h = matmul(x, w);             // (2, 3): recorded on the tape
  Variable loss = sum(mul(tanh(h), h));  // h is used twice: its gradients add up
  loss.backward();                       // walks the tape from loss back to x and w
  fmt::print("loss = {:.6f}\n", loss.item());
  fmt::print("dL/dW =\n{}\n", w.grad().str());

  // 2. Check that gradient against finite differences, in f64.
  const GradcheckResult check = gradcheck(
      [](const std::vector<Variable>& v) {
        return sum(mul(tanh(matmul(v[0], v[1])), matmul(v[0], v[1])));
      },
      {x.value(), w.value()});
  fmt::print("{}\n", check.message);
  if (!check.ok) return 1;

  // 3. Fit y = 3x − 1 from 32 noisy points with plain gradient descent.
  Tensor xs = Tensor::uniform({32, 1}, rng, -1, 1);
  Tensor ys = add_scalar(mul_scalar(xs, 3.0), -1.0);
  Variable slope(Tensor::zeros({1, 1}), true), bias(Tensor::zeros({1}), true);
  const Variable inputs(xs), targets(ys);
  double final_loss = 0;
  for (int step = 0; step < 200; ++step) {
    Variable pred = add(matmul(inputs, slope), bias);  // (32, 1)
    Variable err = sub(pred, targets);
    Variable mse = mean(mul(err, err));
    mse.backward();
    {
      NoGradGuard no_grad;  // the update itself is not part of the model
      axpy_(slope.mutable_value(), -0.5, slope.grad());
      axpy_(bias.mutable_value(), -0.5, bias.grad());
    }
    slope.zero_grad();
    bias.zero_grad();
    final_loss = mse.item();
  }
  fmt::print("fitted y = {:.4f}·x + {:.4f} (true: 3·x − 1), mse {:.2e}\n", slope.value().item(),
             bias.value().item(), final_loss);
  return final_loss < 1e-6 ? 0 : 1;
}
