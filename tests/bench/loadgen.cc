// loadgen: an open-loop gRPC load generator for Classify, against slmgw.v1.GatewayService (the
// gateway or slm-router) or, with --worker, slmgw.v1.WorkerService (a worker directly).
//
//   loadgen --target 127.0.0.1:50051 --rate 1000 --duration_s 5 [--worker] [--task sentiment]
//           [--text "a good movie"] [--deadline_ms 1000] [--max_outstanding 1000]
//           [--channels 4] [--warmup_s 1] [--count N] [--json [--raw_latencies]]
//
// Open loop: request i is due at start + i / rate whatever the responses do, and its latency is
// measured from that scheduled time (not from when it was actually sent), so a stalled server or a
// late sender shows up as latency instead of hiding it (no coordinated omission). At most
// --max_outstanding calls are in flight; a request due while that many are outstanding is not
// sent and is counted as "skipped". Every call's status is checked and counted by code. Latency
// percentiles are over OK calls, from a sorted vector of all of them (exact, nearest rank).
//
// Threading: one scheduling thread issues calls with the gRPC callback API; completions run on
// gRPC's threads and record into a mutex-guarded Recorder. Speed is reported, never asserted:
// this is a benchmark binary, not a ctest test.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "slmgw/v1/gateway.grpc.pb.h"
#include "slmgw/v1/worker.grpc.pb.h"

ABSL_FLAG(std::string, target, "",
          "host:port of the service (required); a comma-separated list spreads the channels "
          "over several (channel i connects to target i mod n)");
ABSL_FLAG(bool, worker, false, "call slmgw.v1.WorkerService.Classify instead of the gateway's");
ABSL_FLAG(double, rate, 1000, "requests per second (open loop)");
ABSL_FLAG(double, duration_s, 5, "seconds of load (ignored when --count is set)");
ABSL_FLAG(int64_t, count, 0, "number of requests to schedule (0: rate * duration_s)");
ABSL_FLAG(double, warmup_s, 1, "seconds of unrecorded load at the same rate before measuring");
ABSL_FLAG(std::string, text, "a good movie", "request text");
ABSL_FLAG(std::string, task, "", "RequestOptions.task (gateway service only)");
ABSL_FLAG(int, deadline_ms, 1000, "per-call deadline in ms (0: 60 s, so every call ends)");
ABSL_FLAG(int, max_outstanding, 1000, "calls in flight at most; a due request beyond is skipped");
ABSL_FLAG(int, channels, 4, "gRPC channels (separate connections) to spread the load over");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the table");
ABSL_FLAG(bool, raw_latencies, false,
          "with --json: also every OK call's latency and router time (us), to pool several runs");

namespace {

using Clock = std::chrono::steady_clock;

// Outcomes of the measured calls. Thread-safe.
class Recorder {
 public:
  // router_us < 0: the response carries no router timing (worker calls).
  void Record(const grpc::Status& status, int64_t latency_ns, int64_t router_us, bool measured) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!measured) return;
    if (status.ok()) {
      latencies_ns_.push_back(latency_ns);
      if (router_us >= 0) router_ns_.push_back(router_us * 1000);
    } else {
      ++errors_[status.error_code()];
      if (first_error_.empty()) first_error_ = status.error_message();
    }
  }
  // Call after all calls completed.
  std::vector<int64_t> SortedLatencies() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> sorted = latencies_ns_;
    std::sort(sorted.begin(), sorted.end());
    return sorted;
  }
  std::vector<int64_t> SortedRouterTimes() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> sorted = router_ns_;
    std::sort(sorted.begin(), sorted.end());
    return sorted;
  }
  std::map<int, int64_t> Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  std::string FirstError() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> latencies_ns_;
  std::vector<int64_t> router_ns_;  // ServedBy.timings.router_us of gateway responses
  std::map<int, int64_t> errors_;
  std::string first_error_;
};

// Counts calls in flight; WaitZero blocks until all completed.
class InFlight {
 public:
  bool TryAcquire(int limit) {
    std::lock_guard<std::mutex> lock(mu_);
    if (n_ >= limit) return false;
    ++n_;
    return true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--n_ == 0) zero_.notify_all();
  }
  void WaitZero() {
    std::unique_lock<std::mutex> lock(mu_);
    zero_.wait(lock, [this] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable zero_;
  int n_ = 0;
};

const char* CodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",   "UNIMPLEMENTED",      "INTERNAL",
      "UNAVAILABLE", "DATA_LOSS",       "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNRECOGNIZED";
}

// Nearest-rank percentile of a sorted vector, in microseconds.
double PercentileUs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return sorted[rank - 1] / 1e3;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

// One call in flight; deletes itself when done.
struct Call {
  grpc::ClientContext context;
  slmgw::v1::ClassifyResponse gateway_response;
  slmgw::v1::WorkerServiceClassifyResponse worker_response;
  Clock::time_point scheduled;
  bool measured = false;
};

int Usage(const std::string& message) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("loadgen --target HOST:PORT [--worker] --rate R --duration_s S");
  absl::ParseCommandLine(argc, argv);
  const std::string target = absl::GetFlag(FLAGS_target);
  const double rate = absl::GetFlag(FLAGS_rate);
  const double duration_s = absl::GetFlag(FLAGS_duration_s);
  const double warmup_s = absl::GetFlag(FLAGS_warmup_s);
  const int channels_n = absl::GetFlag(FLAGS_channels);
  const int max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  const int deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  const bool worker = absl::GetFlag(FLAGS_worker);
  if (target.empty()) return Usage("--target is required (host:port)");
  if (!(rate > 0 && rate <= 1e6)) return Usage("--rate must be in (0, 1e6] requests/s");
  if (!(duration_s > 0) && absl::GetFlag(FLAGS_count) <= 0) {
    return Usage("--duration_s must be > 0 (or set --count)");
  }
  if (!(warmup_s >= 0)) return Usage("--warmup_s must be >= 0");
  if (channels_n < 1 || channels_n > 256) return Usage("--channels must be in [1, 256]");
  if (max_outstanding < 1) return Usage("--max_outstanding must be >= 1");
  if (deadline_ms < 0) return Usage("--deadline_ms must be >= 0");
  if (worker && !absl::GetFlag(FLAGS_task).empty()) {
    return Usage("--task applies to the gateway service, not --worker");
  }
  const int64_t measured_n = absl::GetFlag(FLAGS_count) > 0
                                 ? absl::GetFlag(FLAGS_count)
                                 : static_cast<int64_t>(std::llround(rate * duration_s));
  const int64_t warmup_n = static_cast<int64_t>(std::llround(rate * warmup_s));
  if (measured_n < 1) return Usage("rate * duration_s rounds to no request");

  const std::vector<std::string> targets = absl::StrSplit(target, ',', absl::SkipEmpty());
  if (targets.empty()) return Usage("--target is required (host:port)");
  // Separate connections: a distinct channel argument keeps gRPC from sharing one subchannel.
  std::vector<std::unique_ptr<slmgw::v1::GatewayService::Stub>> gateway_stubs;
  std::vector<std::unique_ptr<slmgw::v1::WorkerService::Stub>> worker_stubs;
  for (int i = 0; i < channels_n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("slmgw.loadgen.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const std::string& address = targets[i % targets.size()];
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      return Usage(absl::StrCat("could not connect to ", address, " within 10 s"));
    }
    if (worker) {
      worker_stubs.push_back(slmgw::v1::WorkerService::NewStub(channel));
    } else {
      gateway_stubs.push_back(slmgw::v1::GatewayService::NewStub(channel));
    }
  }
  slmgw::v1::ClassifyRequest gateway_request;
  gateway_request.set_text(absl::GetFlag(FLAGS_text));
  gateway_request.mutable_options()->set_task(absl::GetFlag(FLAGS_task));
  slmgw::v1::WorkerServiceClassifyRequest worker_request;
  worker_request.set_text(absl::GetFlag(FLAGS_text));

  Recorder recorder;
  InFlight in_flight;
  int64_t sent = 0, skipped = 0;
  std::vector<int64_t> send_lag_ns;  // actual send - scheduled, measured calls only
  send_lag_ns.reserve(measured_n);
  const auto period = std::chrono::duration<double>(1.0 / rate);
  const auto deadline = std::chrono::milliseconds(deadline_ms > 0 ? deadline_ms : 60000);
  const auto start = Clock::now();
  const int64_t total_n = warmup_n + measured_n;
  Clock::time_point measured_start, last_scheduled;
  for (int64_t i = 0; i < total_n; ++i) {
    const auto scheduled =
        start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    std::this_thread::sleep_until(scheduled);
    const bool measured = i >= warmup_n;
    if (i == warmup_n) measured_start = scheduled;
    last_scheduled = scheduled;
    if (!in_flight.TryAcquire(max_outstanding)) {
      if (measured) ++skipped;
      continue;
    }
    auto* call = new Call;
    call->scheduled = scheduled;
    call->measured = measured;
    // gRPC takes system_clock deadlines: the same distance from now as scheduled + deadline.
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                   scheduled + deadline - Clock::now()));
    auto done = [call, worker, &recorder, &in_flight](grpc::Status status) {
      const int64_t latency_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - call->scheduled)
              .count();
      const int64_t router_us =
          worker ? -1
                 : static_cast<int64_t>(call->gateway_response.served_by().timings().router_us());
      recorder.Record(status, latency_ns, router_us, call->measured);
      delete call;
      in_flight.Release();
    };
    const int channel_index = static_cast<int>(i % channels_n);
    const auto now = Clock::now();
    if (worker) {
      worker_stubs[channel_index]->async()->Classify(&call->context, &worker_request,
                                                      &call->worker_response, done);
    } else {
      gateway_stubs[channel_index]->async()->Classify(&call->context, &gateway_request,
                                                       &call->gateway_response, done);
    }
    if (measured) {
      ++sent;
      send_lag_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - scheduled).count());
    }
  }
  const auto send_end = Clock::now();
  in_flight.WaitZero();
  const auto end = Clock::now();

  const std::vector<int64_t> latencies = recorder.SortedLatencies();
  const std::vector<int64_t> router_times = recorder.SortedRouterTimes();
  const std::map<int, int64_t> errors = recorder.Errors();
  std::sort(send_lag_ns.begin(), send_lag_ns.end());
  const double schedule_s = std::chrono::duration<double>(last_scheduled - measured_start).count();
  const double send_s = std::chrono::duration<double>(send_end - measured_start).count();
  const double wall_s = std::chrono::duration<double>(end - measured_start).count();
  const int64_t ok = static_cast<int64_t>(latencies.size());
  const double sent_rate = send_s > 0 ? sent / send_s : 0;
  const double ok_rate = wall_s > 0 ? ok / wall_s : 0;
  const double mean_us =
      latencies.empty() ? 0
                        : [&] {
                            double sum = 0;
                            for (int64_t v : latencies) sum += v;
                            return sum / latencies.size() / 1e3;
                          }();
  const double percentiles[] = {50, 90, 99, 99.9};
  const char* const percentile_names[] = {"p50", "p90", "p99", "p99_9"};
  const double max_us = latencies.empty() ? 0 : latencies.back() / 1e3;

  if (absl::GetFlag(FLAGS_json)) {
    std::string out = absl::StrFormat(
        "{\"target\":\"%s\",\"service\":\"%s\",\"rate\":%g,\"scheduled\":%d,\"sent\":%d,"
        "\"skipped\":%d,\"ok\":%d,\"sent_rate\":%.1f,\"ok_rate\":%.1f,\"schedule_s\":%.3f,"
        "\"errors\":{",
        JsonEscape(target), worker ? "worker" : "gateway", rate, measured_n, sent, skipped, ok,
        sent_rate, ok_rate, schedule_s);
    bool first = true;
    for (const auto& [code, n] : errors) {
      absl::StrAppend(&out, first ? "" : ",", "\"", CodeName(code), "\":", n);
      first = false;
    }
    absl::StrAppend(&out, "},\"first_error\":\"", JsonEscape(recorder.FirstError()),
                    "\",\"latency_us\":{");
    for (int k = 0; k < 4; ++k) {
      absl::StrAppend(&out, "\"", percentile_names[k],
                      "\":", absl::StrFormat("%.1f", PercentileUs(latencies, percentiles[k])),
                      ",");
    }
    absl::StrAppend(&out, absl::StrFormat("\"mean\":%.1f,\"max\":%.1f},", mean_us, max_us),
                    absl::StrFormat("\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}",
                                    PercentileUs(send_lag_ns, 50), PercentileUs(send_lag_ns, 99),
                                    send_lag_ns.empty() ? 0 : send_lag_ns.back() / 1e3));
    if (!router_times.empty()) {
      out.pop_back();
      absl::StrAppend(&out, absl::StrFormat(
                                ",\"router_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}",
                                PercentileUs(router_times, 50), PercentileUs(router_times, 99),
                                router_times.back() / 1e3));
    }
    if (absl::GetFlag(FLAGS_raw_latencies)) {
      out.pop_back();
      auto append_all = [&out](const char* name, const std::vector<int64_t>& values_ns) {
        absl::StrAppend(&out, ",\"", name, "\":[");
        for (size_t i = 0; i < values_ns.size(); ++i) {
          absl::StrAppend(&out, i == 0 ? "" : ",", absl::StrFormat("%.1f", values_ns[i] / 1e3));
        }
        absl::StrAppend(&out, "]");
      };
      append_all("all_latency_us", latencies);
      append_all("all_router_us", router_times);
      absl::StrAppend(&out, "}");
    }
    std::printf("%s\n", out.c_str());
  } else {
    std::printf("target %s (%s), rate %g/s, %lld scheduled over %.2f s, %d channels\n",
                target.c_str(), worker ? "WorkerService" : "GatewayService", rate,
                static_cast<long long>(measured_n), schedule_s, channels_n);
    std::printf("  sent %lld (%.1f/s)  ok %lld (%.1f/s)  skipped %lld (max_outstanding %d)\n",
                static_cast<long long>(sent), sent_rate, static_cast<long long>(ok), ok_rate,
                static_cast<long long>(skipped), max_outstanding);
    for (const auto& [code, n] : errors) {
      std::printf("  %-20s %lld\n", CodeName(code), static_cast<long long>(n));
    }
    if (!errors.empty()) std::printf("  first error: %s\n", recorder.FirstError().c_str());
    std::printf("  latency us (from scheduled send, OK calls):\n");
    std::printf("    %8s %8s %8s %8s %8s %8s\n", "p50", "p90", "p99", "p99.9", "mean", "max");
    std::printf("    %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f\n", PercentileUs(latencies, 50),
                PercentileUs(latencies, 90), PercentileUs(latencies, 99),
                PercentileUs(latencies, 99.9), mean_us, max_us);
    std::printf("  send lag us (sender behind schedule): p50 %.1f p99 %.1f max %.1f\n",
                PercentileUs(send_lag_ns, 50), PercentileUs(send_lag_ns, 99),
                send_lag_ns.empty() ? 0 : send_lag_ns.back() / 1e3);
    if (!router_times.empty()) {
      std::printf("  router-reported overhead us (ServedBy.timings.router_us): p50 %.1f p99 %.1f "
                  "max %.1f\n",
                  PercentileUs(router_times, 50), PercentileUs(router_times, 99),
                  router_times.back() / 1e3);
    }
  }
  // Non-zero when any measured call failed or was skipped, so scripts notice.
  return (errors.empty() && skipped == 0 && ok == sent) ? 0 : 1;
}
