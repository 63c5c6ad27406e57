#include "trainer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <span>
#include <sstream>
#include <stdexcept>

#include "optimizer_flags.hpp"
#include "progress.hpp"
#include "rmsprop/checkpoint.hpp"
#include "rmsprop/error.hpp"
#include "task_flags.hpp"

namespace rmsprop::cli {
namespace {

// checkpoint.pt: the libtorch archive of the model, the optimizer, the history and the run's
// fingerprint, in the envelope of rmsprop's own checkpoints (rmsprop/checkpoint.hpp).
constexpr SealedFormat kTrainingCheckpoint{
    {'R', 'M', 'S', 'P', 'T', 'R', 'N', 'G'}, 1, 1, "training checkpoint"};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What must match for a checkpoint to be resumed by these settings.
std::string fingerprint(const TrainSettings& s, const Dataset& d) {
  std::string text = describe(s.model, d.classes) + "; data " + d.name + " " +
                     std::to_string(d.train.size()) + "/" + std::to_string(d.val.size()) +
                     "; batch " + std::to_string(s.batch_size) + "; seed " +
                     std::to_string(s.seed) + "; backend " + s.backend + "; options";
  for (const auto& [name, value] : s.options.to_pairs()) text += " " + name + "=" + value;
  return text;
}

::torch::Tensor loss_of(const ::torch::Tensor& out, const ::torch::Tensor& y, bool classify) {
  return classify ? ::torch::nn::functional::cross_entropy(out, y) : ::torch::mse_loss(out, y);
}

struct Metrics {
  double loss = 0, accuracy = 0;
};

Metrics evaluate(::torch::nn::Sequential& model, const Split& split, bool classify) {
  ::torch::NoGradGuard no_grad;
  model->eval();
  double loss = 0, correct = 0;
  const std::int64_t n = split.size();
  for (std::int64_t begin = 0; begin < n; begin += 1000) {
    const std::int64_t end = std::min(n, begin + 1000);
    auto x = split.x.slice(0, begin, end), y = split.y.slice(0, begin, end);
    auto out = model->forward(x);
    loss += loss_of(out, y, classify).item<double>() * double(end - begin);
    if (classify) correct += out.argmax(1).eq(y).sum().item<double>();
  }
  return {loss / double(n), correct / double(n)};
}

constexpr int kRecordFields = 7;

::torch::Tensor history_tensor(const std::vector<EpochRecord>& epochs) {
  auto t = ::torch::zeros({std::int64_t(epochs.size()), kRecordFields}, ::torch::kDouble);
  auto a = t.accessor<double, 2>();
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    const EpochRecord& r = epochs[i];
    const double row[kRecordFields] = {double(r.epoch),    r.train_loss,   r.train_accuracy,
                                       r.val_loss,         r.val_accuracy, r.seconds,
                                       r.optimizer_seconds};
    for (int k = 0; k < kRecordFields; ++k) a[std::int64_t(i)][k] = row[k];
  }
  return t;
}

std::vector<EpochRecord> history_of(const ::torch::Tensor& t) {
  std::vector<EpochRecord> out;
  if (t.dim() != 2 || t.size(1) != kRecordFields || t.scalar_type() != ::torch::kDouble) {
    throw std::runtime_error("its history is not a float64 table of " +
                             std::to_string(kRecordFields) + " columns");
  }
  auto a = t.accessor<double, 2>();
  for (std::int64_t i = 0; i < t.size(0); ++i) {
    const double epoch = a[i][0];  // whole and in range before it becomes an integer
    if (!(epoch >= 1 && epoch <= double(kMaxEpochs)) || epoch != std::floor(epoch)) {
      throw std::runtime_error("its history's row " + std::to_string(i) + " has epoch " +
                               std::to_string(epoch));
    }
    out.push_back({std::int64_t(epoch), a[i][1], a[i][2], a[i][3], a[i][4], a[i][5], a[i][6]});
  }
  return out;
}

// Module::load takes a saved tensor of any shape and dtype: the model's own must come back.
void check_tensors(::torch::nn::Module& module, ::torch::serialize::InputArchive& archive,
                   const std::string& prefix) {
  auto check = [&](const std::string& name, const ::torch::Tensor& tensor, bool is_buffer) {
    ::torch::Tensor saved;
    archive.read(name, saved, is_buffer);
    if (saved.sizes() != tensor.sizes() || saved.scalar_type() != tensor.scalar_type()) {
      throw std::runtime_error(
          "its " + prefix + name + " is " + c10::toString(saved.scalar_type()) + " of shape " +
          c10::str(saved.sizes()) + ", the model's " + c10::toString(tensor.scalar_type()) +
          " of shape " + c10::str(tensor.sizes()));
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) check(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) check(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    ::torch::serialize::InputArchive child_archive;
    archive.read(child.key(), child_archive);
    check_tensors(*child.value(), child_archive, prefix + child.key() + ".");
  }
}

void save_checkpoint(const std::filesystem::path& path, ::torch::nn::Sequential& model,
                     ::torch::optim::Optimizer& opt, const std::vector<EpochRecord>& history,
                     const std::string& print) {
  ::torch::serialize::OutputArchive archive, model_archive, opt_archive;
  model->save(model_archive);
  opt.save(opt_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", opt_archive);
  archive.write("history", history_tensor(history));
  archive.write("fingerprint", c10::IValue(print));
  std::ostringstream out;
  archive.save_to(out);
  const std::string bytes = std::move(out).str();
  // sealed (a checksum over the whole archive: --resume refuses a damaged file) and written
  // atomically: an interrupted save never leaves a damaged checkpoint
  write_file_atomically(path, seal(kTrainingCheckpoint, std::as_bytes(std::span(bytes))));
}

std::vector<EpochRecord> load_checkpoint(const std::filesystem::path& path,
                                         ::torch::nn::Sequential& model,
                                         ::torch::optim::Optimizer& opt, const std::string& print) {
  ::torch::serialize::InputArchive archive, model_archive, opt_archive;
  SealedFile file;
  try {
    file = read_sealed(path, kTrainingCheckpoint);  // every byte checked before any is used
  } catch (const CheckpointError& e) {
    throw std::runtime_error(std::string("--resume: ") + e.what());
  }
  // A sealed file is one this program wrote, unless someone forged its checksum: what torch
  // parses is still checked as untrusted, every error naming the file.
  try {
    const auto payload = file.payload();
    std::istringstream in(
        std::string(reinterpret_cast<const char*>(payload.data()), payload.size()));
    archive.load_from(in);
    c10::IValue saved_print;
    archive.read("fingerprint", saved_print);
    if (!saved_print.isString()) throw std::runtime_error("its fingerprint is not text");
    if (saved_print.toStringRef() != print) {
      throw std::runtime_error("the checkpoint is of another run:\n  saved: " +
                               saved_print.toStringRef() + "\n  now:   " + print);
    }
    archive.read("model", model_archive);
    archive.read("optimizer", opt_archive);
    ::torch::Tensor history;
    archive.read("history", history);
    std::vector<EpochRecord> records = history_of(history);
    check_tensors(*model, model_archive, "");
    model->load(model_archive);
    opt.load(opt_archive);
    return records;
  } catch (const c10::Error& e) {
    throw std::runtime_error("--resume " + path.string() + ": not a readable checkpoint (" +
                             e.what_without_backtrace() + ")");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("--resume " + path.string() + ": " + e.what());
  }
}

// The model's gradients as buffers for Distribution::average: a parameter without one (a rank
// with no rows in this batch) gets zeros, so every rank averages the same list.
std::vector<Param> gradients_of(::torch::nn::Sequential& model) {
  std::vector<Param> out;
  for (auto& p : model->parameters()) {
    if (!p.grad().defined()) p.mutable_grad() = ::torch::zeros_like(p);
    auto& g = p.mutable_grad();
    if (!g.is_contiguous() || g.scalar_type() != ::torch::kFloat)
      g = g.contiguous().to(::torch::kFloat);
    out.push_back({p.data_ptr(), g.data_ptr(), std::size_t(p.numel()), DType::f32, false});
  }
  return out;
}

std::string digest(::torch::nn::Sequential& model) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const auto& p : model->parameters()) {
    const auto c = p.contiguous();
    const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
    for (std::size_t i = 0; i < std::size_t(c.nbytes()); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace

TrainResult train(const TrainSettings& s, const Dataset& data, std::FILE* log) {
  if (s.epochs <= 0)
    throw std::invalid_argument("--epochs " + std::to_string(s.epochs) + ": must be > 0");
  if (s.batch_size <= 0) {
    throw std::invalid_argument("--batch-size " + std::to_string(s.batch_size) + ": must be > 0");
  }
  if ((s.model.kind == "linreg") != (data.classes == 0)) {
    throw std::invalid_argument("model " + s.model.kind + " does not fit the data " + data.name);
  }
  const bool classify = data.classes > 0;
  ::torch::manual_seed(s.seed);
  auto model = make_model(s.model, data.classes);
  auto opt = make_optimizer(s.backend, s.options, model->parameters(), s.threads);
  const std::string print = fingerprint(s, data);

  TrainResult result;
  result.model = describe(s.model, data.classes);
  for (const auto& p : model->parameters()) result.parameters += p.numel();
  // the untrained model's loss (before any checkpoint is loaded: it depends only on the seed),
  // what a run that diverged ends above
  const Split& watched = data.val.size() > 0 ? data.val : data.train;
  result.initial_loss = evaluate(model, watched, classify).loss;
  if (!s.resume.empty()) {
    result.epochs = load_checkpoint(s.resume, model, *opt, print);
    std::fprintf(log, "resumed from %s after epoch %lld\n", s.resume.c_str(),
                 static_cast<long long>(result.epochs.size()));
  }
  const std::optional<Distribution>& dist = s.distribution;
  std::unique_ptr<ShardedState> sharded;
  if (dist && dist->shard) {
    sharded = dist->shard(*opt, s.threads);
    if (!s.resume.empty()) sharded->scatter_from(*opt);
  }
  const std::int64_t n = data.train.size();
  // no n + batch_size - 1: it overflows for a batch size near 2^63
  const std::int64_t batches = n / s.batch_size + (n % s.batch_size != 0);
  std::int64_t ran = 0;
  for (std::int64_t epoch = std::int64_t(result.epochs.size()); epoch < s.epochs; ++epoch) {
    if (s.stop_after > 0 && ran == s.stop_after) return result;
    // Shuffling and dropout draw from generators seeded per epoch, so that a resumed run
    // draws what the uninterrupted one did.
    ::torch::manual_seed(s.seed * 1'000'003 + std::uint64_t(epoch) + 1);
    auto order = ::torch::randperm(n, ::torch::kLong);
    // every rank draws the same order; the others then their own dropout (rank 0 goes on
    // with the stream one process would draw from)
    if (dist && dist->rank > 0) {
      ::torch::manual_seed(s.seed * 1'000'003 + std::uint64_t(epoch) + 1 +
                           0x9E3779B97F4A7C15ull * std::uint64_t(dist->rank));
    }
    model->train();
    Progress bar(s.label + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(s.epochs),
                 batches, s.progress);
    EpochRecord r;
    r.epoch = epoch + 1;
    double loss_sum = 0, correct = 0;
    const auto start = Clock::now();
    for (std::int64_t b = 0; b < batches; ++b) {
      auto idx = order.slice(0, b * s.batch_size, std::min(n, (b + 1) * s.batch_size));
      const std::int64_t rows = idx.size(0);
      if (dist)
        idx = idx.slice(0, rows * dist->rank / dist->ranks, rows * (dist->rank + 1) / dist->ranks);
      opt->zero_grad();
      // this process's rows: their loss sum and correct predictions
      double sums[2] = {0, 0};
      if (idx.size(0) > 0) {
        auto x = data.train.x.index_select(0, idx), y = data.train.y.index_select(0, idx);
        auto out = model->forward(x);
        auto loss = loss_of(out, y, classify);
        // A rank's mean over its rows, weighted by its share of the batch times the ranks:
        // the average across ranks is then the batch's mean gradient, as in one process.
        if (dist) {
          (loss * (double(idx.size(0)) * dist->ranks / double(rows))).backward();
        } else {
          loss.backward();
        }
        sums[0] = loss.item<double>() * double(idx.size(0));
        if (classify) sums[1] = out.argmax(1).eq(y).sum().item<double>();
      }
      if (dist) {
        if (!sharded) dist->average(gradients_of(model));     // (the sharded step averages them)
        dist->average({{sums, sums, 2, DType::f64, false}});  // the same bits on every rank
        sums[0] *= dist->ranks, sums[1] *= dist->ranks;
      }
      const auto step_start = Clock::now();
      if (sharded) {
        sharded->step();
      } else {
        opt->step();
      }
      r.optimizer_seconds += seconds_since(step_start);
      const double batch_loss = sums[0] / double(rows);
      if (!std::isfinite(batch_loss)) {
        throw std::runtime_error("the training loss became " + std::to_string(batch_loss) +
                                 " in epoch " + std::to_string(epoch + 1) +
                                 " (learning rate too high?)");
      }
      loss_sum += sums[0];
      correct += sums[1];
      bar.update(b + 1,
                 "loss " + std::to_string(loss_sum / double((b + 1) * s.batch_size)).substr(0, 6));
    }
    r.seconds = seconds_since(start);
    bar.finish();
    r.train_loss = loss_sum / double(n);
    r.train_accuracy = correct / double(n);
    if (data.val.size() > 0) {
      const Metrics val = evaluate(model, data.val, classify);
      r.val_loss = val.loss;
      r.val_accuracy = val.accuracy;
    }
    result.epochs.push_back(r);
    if (classify) {
      std::fprintf(log,
                   "epoch %lld/%lld  train loss %.4f acc %.4f  val loss %.4f acc %.4f  (%.2f s, "
                   "optimizer %.0f%%)\n",
                   static_cast<long long>(r.epoch), static_cast<long long>(s.epochs), r.train_loss,
                   r.train_accuracy, r.val_loss, r.val_accuracy, r.seconds,
                   100 * r.optimizer_seconds / r.seconds);
    } else {
      std::fprintf(log, "epoch %lld/%lld  train loss %.6f  val loss %.6f  (%.2f s)\n",
                   static_cast<long long>(r.epoch), static_cast<long long>(s.epochs), r.train_loss,
                   r.val_loss, r.seconds);
    }
    std::fflush(log);
    if (s.on_epoch) s.on_epoch(r);
    if (sharded) sharded->gather_into(*opt);  // every rank takes part
    if (!s.checkpoint.empty()) save_checkpoint(s.checkpoint, model, *opt, result.epochs, print);
    if (sharded) opt->state().clear();  // back to 1/N of the state on rank 0
    ++ran;
  }
  const double final_loss =
      data.val.size() > 0 ? result.epochs.back().val_loss : result.epochs.back().train_loss;
  result.diverged = !(final_loss <= result.initial_loss);  // NaN too
  result.weights_digest = digest(model);
  const Metrics test = evaluate(model, data.test, classify);
  result.test_loss = test.loss;
  if (classify) result.test_accuracy = test.accuracy;
  return result;
}

}  // namespace rmsprop::cli
