#include "store/state_service.h"

#include <spdlog/spdlog.h>

#include "observe/metrics.h"

namespace sluice::store {

StateService::StateService(std::unique_ptr<StateStore> store,
                           std::chrono::milliseconds sweep_every, int threads)
    : store_(std::move(store)), pool_(static_cast<size_t>(std::max(1, threads))) {
  const observe::Cell swept = observe::Registry::instance().counter(
      "sluice_state_swept_total", "Expired records and list items the state store's sweeper removed.");
  sweeper_ = std::thread([this, sweep_every, swept] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, sweep_every, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      const size_t n = store_->sweep();
      if (n > 0) {
        swept_.fetch_add(n, std::memory_order_relaxed);
        observe::add(swept, n);
        spdlog::debug("state: swept {} expired entries", n);
      }
      lock.lock();
    }
  });
}

StateService::~StateService() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  sweeper_.join();
  pool_.join();
}

}  // namespace sluice::store
