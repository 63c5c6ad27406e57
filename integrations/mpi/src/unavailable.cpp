// The MPI backend's entry points in a build without MPI: each says so.
#include "rmsprop/error.hpp"
#include "rmsprop/mpi.hpp"

namespace rmsprop::mpi {
namespace {
[[noreturn]] void refuse() {
  throw Error("rmsprop::mpi: this build has no MPI backend (install libopenmpi-dev and rebuild)");
}
}  // namespace

struct DataParallel::Impl {};
struct GradientAverager::Impl {};
struct ShardedOptimizer::Impl {};

bool available() {
  return false;
}
Session::Session(int*, char***) {
  refuse();
}
Session::~Session() = default;
void Session::abort(int) {
  refuse();
}
Communicator Communicator::world() {
  refuse();
}
Communicator Communicator::of(const void*) {
  refuse();
}
GradientAverager::GradientAverager(Communicator, std::size_t) {
  refuse();
}
GradientAverager::~GradientAverager() = default;
GradientAverager::GradientAverager(GradientAverager&&) noexcept = default;
void GradientAverager::average(const std::vector<Param>&) {
  refuse();
}
const StepTraffic& GradientAverager::last_traffic() const {
  refuse();
}
const Communicator& GradientAverager::communicator() const {
  refuse();
}
DataParallel::DataParallel(std::vector<ParamGroup>, Communicator, std::size_t) {
  refuse();
}
DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;
StepResult DataParallel::step() {
  refuse();
}
Optimizer& DataParallel::optimizer() {
  refuse();
}
const Optimizer& DataParallel::optimizer() const {
  refuse();
}
const StepTraffic& DataParallel::last_traffic() const {
  refuse();
}
ShardedOptimizer::ShardedOptimizer(std::vector<ParamGroup>, Communicator) {
  refuse();
}
ShardedOptimizer::~ShardedOptimizer() = default;
ShardedOptimizer::ShardedOptimizer(ShardedOptimizer&&) noexcept = default;
StepResult ShardedOptimizer::step() {
  refuse();
}
std::size_t ShardedOptimizer::shard_begin() const {
  refuse();
}
std::size_t ShardedOptimizer::shard_end() const {
  refuse();
}
std::size_t ShardedOptimizer::total_values() const {
  refuse();
}
const Optimizer& ShardedOptimizer::shard_optimizer() const {
  refuse();
}
void ShardedOptimizer::set_kernel_config(const KernelConfig&) {
  refuse();
}
const StepTraffic& ShardedOptimizer::last_traffic() const {
  refuse();
}
std::int64_t ShardedOptimizer::steps_taken() const {
  refuse();
}
void ShardedOptimizer::save(const std::filesystem::path&) const {
  refuse();
}
void ShardedOptimizer::load(const std::filesystem::path&) {
  refuse();
}
std::vector<std::byte> ShardedOptimizer::save_to_memory() const {
  refuse();
}
void ShardedOptimizer::load_from_memory(std::span<const std::byte>, std::string_view) {
  refuse();
}
void DataParallel::save(const std::filesystem::path&) const {
  refuse();
}
void DataParallel::load(const std::filesystem::path&) {
  refuse();
}
}  // namespace rmsprop::mpi
