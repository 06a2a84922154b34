#include "tests/router/upstream/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace slm::testing {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::pipe(stop_pipe_) != 0) {
    std::abort();  // a test machine without loopback cannot run these tests at all
  }
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  accept_thread_ = std::thread([this] { Accept(); });
}

FakeHttpServer::~FakeHttpServer() {
  const char byte = 'x';
  (void)::write(stop_pipe_[1], &byte, 1);  // the pipe stays readable: every poller sees it
  accept_thread_.join();
  std::vector<std::thread> connections;
  {
    absl::MutexLock lock(&mutex_);
    connections.swap(connections_);
  }
  for (std::thread& thread : connections) thread.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

std::vector<FakeHttpServer::Request> FakeHttpServer::requests() {
  absl::MutexLock lock(&mutex_);
  return requests_;
}

int FakeHttpServer::client_hangups() {
  absl::MutexLock lock(&mutex_);
  return client_hangups_;
}

FakeHttpServer::Reply FakeHttpServer::Json(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.headers = {{"Content-Type", "application/json"}};
  reply.chunks = {std::move(body)};
  return reply;
}

FakeHttpServer::Reply FakeHttpServer::Events(const std::vector<std::string>& data) {
  Reply reply;
  reply.headers = {{"Content-Type", "text/event-stream"}};
  for (const std::string& event : data) reply.chunks.push_back("data: " + event + "\n\n");
  return reply;
}

void FakeHttpServer::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    absl::MutexLock lock(&mutex_);
    connections_.emplace_back([this, fd] {
      Serve(fd);
      ::close(fd);
    });
  }
}

void FakeHttpServer::Serve(int fd) {
  std::string data;
  char buffer[4096];
  size_t header_end;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return;
    data.append(buffer, static_cast<size_t>(n));
  }
  Request request;
  const std::string head = data.substr(0, header_end);
  size_t line_end = head.find("\r\n");
  const std::string first = head.substr(0, line_end);
  const size_t space = first.find(' ');
  request.method = first.substr(0, space);
  request.path = first.substr(space + 1, first.find(' ', space + 1) - space - 1);
  size_t content_length = 0;
  while (line_end != std::string::npos && line_end < head.size()) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    request.headers[Lower(line.substr(0, colon))] = value;
  }
  if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
    content_length = std::strtoul(it->second.c_str(), nullptr, 10);
  }
  request.body = data.substr(header_end + 4);
  while (request.body.size() < content_length) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return;
    request.body.append(buffer, static_cast<size_t>(n));
  }
  {
    absl::MutexLock lock(&mutex_);
    requests_.push_back(request);
  }
  const Reply reply = handler_(request);
  std::string response =
      "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) + "\r\n";
  for (const auto& [name, value] : reply.headers) response += name + ": " + value + "\r\n";
  response += "Connection: close\r\n\r\n";
  if (!(reply.hang && reply.chunks.empty() && reply.status == 0)) {
    if (!SendAll(fd, response)) return;
  }
  for (size_t i = 0; i < reply.chunks.size(); ++i) {
    if (i > 0 && reply.pause.count() > 0) {
      pollfd stop = {stop_pipe_[0], POLLIN, 0};
      if (::poll(&stop, 1, static_cast<int>(reply.pause.count())) > 0) return;
    }
    if (!SendAll(fd, reply.chunks[i])) return;
  }
  if (!reply.hang) return;
  // Hang until the client closes the connection or the server stops.
  while (true) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        absl::MutexLock lock(&mutex_);
        ++client_hangups_;
        return;
      }
    }
  }
}

}  // namespace slm::testing
