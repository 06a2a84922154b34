// A scripted HTTP/1.1 server on loopback standing in for an OpenAI-compatible service in tests:
// each request is answered by a handler that says what to send (status, headers, body chunks
// with pauses) or to hang. Every answer ends by closing the connection.
//
//   FakeHttpServer server([](const FakeHttpServer::Request& request) {
//     return FakeHttpServer::Reply{200, {}, {R"({"choices": ...})"}};
//   });
//   config.set_base_url(server.base_url());
//
// Thread-safety: the handler runs on one thread per connection; the accessors may be called from
// any thread. The destructor unblocks hanging connections and joins every thread.
#ifndef SLM_TESTS_ROUTER_UPSTREAM_FAKE_HTTP_SERVER_H_
#define SLM_TESTS_ROUTER_UPSTREAM_FAKE_HTTP_SERVER_H_

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace slm::testing {

class FakeHttpServer {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
  };
  struct Reply {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::vector<std::string> chunks;     // the body, written and flushed chunk by chunk
    std::chrono::milliseconds pause{0};  // before each chunk after the first
    // After the chunks, keep the connection open until the client leaves. With status 0 nothing
    // at all is sent (a service that accepted the connection and hangs).
    bool hang = false;
  };
  using Handler = std::function<Reply(const Request&)>;

  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests();
  // Connections whose client closed them while the server was hanging.
  int client_hangups();

  // A reply with a JSON body.
  static Reply Json(int status, std::string body);
  // A text/event-stream reply: one `data:` event per entry.
  static Reply Events(const std::vector<std::string>& data);

 private:
  void Accept();
  void Serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::thread accept_thread_;
  absl::Mutex mutex_;
  std::vector<std::thread> connections_ ABSL_GUARDED_BY(mutex_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mutex_);
  int client_hangups_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace slm::testing

#endif  // SLM_TESTS_ROUTER_UPSTREAM_FAKE_HTTP_SERVER_H_
