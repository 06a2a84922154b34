// slmctl's commands. Each returns the process exit code: 0 success, 1 the server answered with
// an error (printed as "error: CODE: message"), 2 a usage error.
#ifndef SLM_TOOLS_SLMCTL_COMMANDS_H_
#define SLM_TOOLS_SLMCTL_COMMANDS_H_

#include <string>

namespace slm::slmctl {

struct CallOptions {
  std::string target;      // host:port of slm-gateway / slm-router (or a worker for health)
  int timeout_ms = 10000;
  bool json = false;       // print the response message as JSON
  std::string task;
  std::string route;
  std::string tenant;
  // classify: a JSON object label -> answer text (e.g. models/banking77-answers.json); the top
  // label's answer is printed after the scores (and added as "answer" to --json output).
  std::string answers;
};

int Classify(const CallOptions& options, const std::string& text);
int Entities(const CallOptions& options, const std::string& text);
int Route(const CallOptions& options, const std::string& text);
int Health(const CallOptions& options, const std::string& service);
// role: "all-in-one" | "router" | "worker".
int ValidateConfig(const std::string& path, const std::string& role);

}  // namespace slm::slmctl

#endif  // SLM_TOOLS_SLMCTL_COMMANDS_H_
