#include "attnlab/tensor/reference/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace attnlab::reference {
namespace {

// q, k (and v) as double, with their sizes and row accessors.
struct Operands {
  std::vector<double> q, k, v;
  int64_t B, Tq, H, dk, Tk, Hkv, dv;
  Operands(const Tensor& qt, const Tensor& kt, const Tensor* vt)
      : q(qt.to_vector()),
        k(kt.to_vector()),
        v(vt ? vt->to_vector() : std::vector<double>()),
        B(qt.size(0)),
        Tq(qt.size(1)),
        H(qt.size(2)),
        dk(qt.size(3)),
        Tk(kt.size(1)),
        Hkv(kt.size(2)),
        dv(vt ? vt->size(3) : 0) {
    ATTN_CHECK(qt.dim() == 4 && kt.dim() == 4 && kt.size(0) == B && kt.size(3) == dk && Hkv > 0 &&
                   H % Hkv == 0 && Tk >= Tq,
               "reference attention: q {} and k {} do not fit", shape_str(qt.shape()),
               shape_str(kt.shape()));
    ATTN_CHECK(
        !vt || (vt->dim() == 4 && vt->size(0) == B && vt->size(1) == Tk && vt->size(2) == Hkv),
        "reference attention: v {} does not fit k {}", shape_str(vt->shape()),
        shape_str(kt.shape()));
  }
  int64_t kv_head(int64_t h) const { return h / (H / Hkv); }
  int64_t q_at(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * H + h) * dk; }
  int64_t k_at(int64_t b, int64_t j, int64_t g) const { return ((b * Tk + j) * Hkv + g) * dk; }
  int64_t v_at(int64_t b, int64_t j, int64_t g) const { return ((b * Tk + j) * Hkv + g) * dv; }
  int64_t o_at(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * H + h) * dv; }

  // p_ij for j = 0 … Tk − Tq + i (the keys query i sees), and lse_i.
  double probabilities(int64_t b, int64_t h, int64_t i, double scale,
                       std::vector<double>& p) const {
    const int64_t g = kv_head(h), last = Tk - Tq + i;
    p.assign(last + 1, 0.0);
    double m = -INFINITY;
    for (int64_t j = 0; j <= last; ++j) {
      double s = 0;
      for (int64_t c = 0; c < dk; ++c) s += q[q_at(b, i, h) + c] * k[k_at(b, j, g) + c];
      p[j] = scale * s;
      m = std::max(m, p[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j <= last; ++j) sum += std::exp(p[j] - m);
    const double lse = m + std::log(sum);
    for (int64_t j = 0; j <= last; ++j) p[j] = std::exp(p[j] - lse);
    return lse;
  }
};

}  // namespace

AttentionOutput attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const Operands x(q, k, &v);
  AttentionOutput r{Tensor::zeros({x.B, x.Tq, x.H, x.dv}, DType::F64),
                    Tensor::zeros({x.B, x.H, x.Tq}, DType::F64)};
  double* out = r.out.data<double>();
  double* lse = r.lse.data<double>();
  std::vector<double> p;
  for (int64_t b = 0; b < x.B; ++b)
    for (int64_t h = 0; h < x.H; ++h)
      for (int64_t i = 0; i < x.Tq; ++i) {
        lse[(b * x.H + h) * x.Tq + i] = x.probabilities(b, h, i, scale, p);
        for (int64_t j = 0; j < static_cast<int64_t>(p.size()); ++j)  // o_i = Σ_j p_ij v_j
          for (int64_t c = 0; c < x.dv; ++c)
            out[x.o_at(b, i, h) + c] += p[j] * x.v[x.v_at(b, j, x.kv_head(h)) + c];
      }
  return r;
}

AttentionGradients attention_backward(const Tensor& dout_t, const Tensor& q, const Tensor& k,
                                      const Tensor& v, double scale) {
  const Operands x(q, k, &v);
  const std::vector<double> dout = dout_t.to_vector();
  ATTN_CHECK(dout_t.shape() == Shape({x.B, x.Tq, x.H, x.dv}),
             "reference attention: dout {} must be [B, Tq, H, dv]", shape_str(dout_t.shape()));
  AttentionGradients r{Tensor::zeros(q.shape(), DType::F64), Tensor::zeros(k.shape(), DType::F64),
                       Tensor::zeros(v.shape(), DType::F64)};
  double *dq = r.dq.data<double>(), *dk = r.dk.data<double>(), *dv = r.dv.data<double>();
  std::vector<double> p, dp;
  for (int64_t b = 0; b < x.B; ++b)
    for (int64_t h = 0; h < x.H; ++h)
      for (int64_t i = 0; i < x.Tq; ++i) {
        x.probabilities(b, h, i, scale, p);
        const int64_t g = x.kv_head(h), n = static_cast<int64_t>(p.size());
        const double* g_o = dout.data() + x.o_at(b, i, h);
        dp.assign(n, 0.0);
        double p_dp = 0;  // Σ_j p_ij dp_ij
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t c = 0; c < x.dv; ++c) {
            dp[j] += g_o[c] * x.v[x.v_at(b, j, g) + c];  // dp_ij = dout_i · v_j
            dv[x.v_at(b, j, g) + c] += p[j] * g_o[c];    // dv_j += p_ij dout_i
          }
          p_dp += p[j] * dp[j];
        }
        for (int64_t j = 0; j < n; ++j) {
          const double ds = p[j] * (dp[j] - p_dp);
          for (int64_t c = 0; c < x.dk; ++c) {
            dq[x.q_at(b, i, h) + c] += scale * ds * x.k[x.k_at(b, j, g) + c];
            dk[x.k_at(b, j, g) + c] += scale * ds * x.q[x.q_at(b, i, h) + c];
          }
        }
      }
  return r;
}

Tensor attention_probabilities(const Tensor& q, const Tensor& k, double scale) {
  const Operands x(q, k, nullptr);
  Tensor out = Tensor::zeros({x.B, x.H, x.Tq, x.Tk}, DType::F64);
  double* o = out.data<double>();
  std::vector<double> p;
  for (int64_t b = 0; b < x.B; ++b)
    for (int64_t h = 0; h < x.H; ++h)
      for (int64_t i = 0; i < x.Tq; ++i) {
        x.probabilities(b, h, i, scale, p);
        std::copy(p.begin(), p.end(), o + ((b * x.H + h) * x.Tq + i) * x.Tk);
      }
  return out;
}

}  // namespace attnlab::reference
