// slmctl: the command-line client of slm-gateway.
//
//   slmctl classify "what a wonderful film"        # text classification
//   slmctl classify --task sentiment --json "meh"  # the response as JSON
//   slmctl entities "Ada Lovelace visited London"  # token classification
//   slmctl route --task sentiment "hello"          # dry run: the routing decision
//   slmctl health                                  # grpc.health.v1 check
//   slmctl validate-config --role router router.yaml
//   echo "text from stdin" | slmctl classify
//   slmctl generate --task chat --max_tokens 64 "Once upon a time"   # streams the text
//   slmctl generate --worker --target 127.0.0.1:50061 --chat "Hi"   # a worker, no router
//   printf 'Hello' | slmctl tokenize --model m.gguf --add-special  # ids as a JSON array
//   echo '[1, 15043]' | slmctl detokenize --model m.gguf           # the text
//   slmctl eval --format banking77 --task banking --json val.csv   # accuracy, routes, latency
#include <algorithm>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "tools/slmctl/commands.h"
#include "tools/slmctl/eval_command.h"
#include "tools/slmctl/generate_command.h"
#include "tools/slmctl/tokenize_commands.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "gateway address host:port");
ABSL_FLAG(int, timeout_ms, 10000, "deadline for the call in milliseconds");
ABSL_FLAG(bool, json, false, "print the response as JSON");
ABSL_FLAG(std::string, task, "", "the task (route table key), e.g. sentiment");
ABSL_FLAG(std::string, route, "", "route hint: a route name that bypasses classification");
ABSL_FLAG(std::string, tenant, "", "tenant identity");
ABSL_FLAG(std::string, service, "", "health: the service name to check (empty: the server)");
ABSL_FLAG(std::string, role, "all-in-one", "validate-config: all-in-one, router or worker");
ABSL_FLAG(std::string, model, "", "tokenize/detokenize: a GGUF file or a tokenizer.json");
ABSL_FLAG(bool, add_special, false, "tokenize: add BOS/EOS as the vocabulary asks");
ABSL_FLAG(bool, parse_special, false, "tokenize: control-token text becomes control tokens");
ABSL_FLAG(bool, render_special, false, "detokenize: print control tokens' text");
ABSL_FLAG(bool, worker, false, "generate: --target is a worker (WorkerService), not the gateway");
ABSL_FLAG(bool, chat, false, "generate: send the text as a user chat message");
ABSL_FLAG(std::string, system, "", "generate --chat: a system message");
ABSL_FLAG(uint32_t, max_tokens, 0, "generate: most output tokens (0: the worker's default)");
ABSL_FLAG(float, temperature, 0, "generate: sampling temperature (0: greedy)");
ABSL_FLAG(uint32_t, top_k, 0, "generate: top-k (0: off)");
ABSL_FLAG(float, top_p, 0, "generate: top-p (0: off)");
ABSL_FLAG(float, min_p, 0, "generate: min-p (0: off)");
ABSL_FLAG(float, repetition_penalty, 0, "generate: repetition penalty (0: off)");
ABSL_FLAG(uint64_t, seed, 0, "generate: sampling seed (0: random)");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings, comma-separated");
ABSL_FLAG(bool, logprobs, false, "generate: print token log-probabilities to stderr");
ABSL_FLAG(std::string, format, "", "eval: clinc150, banking77, sst2, conll or mixed");
ABSL_FLAG(std::string, expect_route, "", "eval: the right route for cases that name none");
ABSL_FLAG(std::vector<std::string>, labels, std::vector<std::string>({"negative", "positive"}),
          "eval --format sst2: names of the numeric labels, comma-separated");
ABSL_FLAG(std::string, answers, "",
          "classify: JSON file label -> answer; prints the top label's answer");
ABSL_FLAG(int, limit, 0, "eval: at most this many examples (0: all)");

namespace {

constexpr char kUsage[] =
    "slmctl COMMAND [flags] [TEXT...]\n"
    "commands: classify, entities, generate, route, health, validate-config FILE, tokenize, "
    "detokenize, eval FILE\n"
    "TEXT defaults to standard input. Flags: --target --timeout_ms --json --task --route "
    "--tenant --service --role; tokenize/detokenize: --model --add-special --parse-special "
    "--render-special";

std::string StandardInput() {
  return std::string((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
}

std::string TextArgument(const std::vector<char*>& args) {
  if (args.size() > 2) return absl::StrJoin(args.begin() + 2, args.end(), " ");
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // Accept --add-special style spellings of the tokenize flags (Abseil names use underscores).
  std::vector<std::string> spelled(argv, argv + argc);
  std::vector<char*> normalized;
  for (std::string& arg : spelled) {
    for (const std::string name : {"--add-special", "--parse-special", "--render-special"}) {
      if (arg.compare(0, name.size(), name) == 0 &&
          (arg.size() == name.size() || arg[name.size()] == '=')) {
        std::replace(arg.begin() + 2, arg.begin() + name.size(), '-', '_');
      }
    }
    normalized.push_back(arg.data());
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, normalized.data());
  if (args.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  const std::string command = args[1];
  slm::slmctl::CallOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  options.json = absl::GetFlag(FLAGS_json);
  options.task = absl::GetFlag(FLAGS_task);
  options.route = absl::GetFlag(FLAGS_route);
  options.tenant = absl::GetFlag(FLAGS_tenant);
  options.answers = absl::GetFlag(FLAGS_answers);
  if (command == "classify") return slm::slmctl::Classify(options, TextArgument(args));
  if (command == "entities") return slm::slmctl::Entities(options, TextArgument(args));
  if (command == "route") return slm::slmctl::Route(options, TextArgument(args));
  if (command == "generate") {
    slm::slmctl::GenerateOptions generate;
    generate.worker = absl::GetFlag(FLAGS_worker);
    generate.chat = absl::GetFlag(FLAGS_chat);
    generate.system = absl::GetFlag(FLAGS_system);
    generate.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    generate.temperature = absl::GetFlag(FLAGS_temperature);
    generate.top_k = absl::GetFlag(FLAGS_top_k);
    generate.top_p = absl::GetFlag(FLAGS_top_p);
    generate.min_p = absl::GetFlag(FLAGS_min_p);
    generate.repetition_penalty = absl::GetFlag(FLAGS_repetition_penalty);
    generate.seed = absl::GetFlag(FLAGS_seed);
    generate.stop = absl::GetFlag(FLAGS_stop);
    generate.logprobs = absl::GetFlag(FLAGS_logprobs);
    return slm::slmctl::Generate(options, generate, TextArgument(args));
  }
  if (command == "health") return slm::slmctl::Health(options, absl::GetFlag(FLAGS_service));
  if (command == "tokenize" || command == "detokenize") {
    slm::slmctl::TokenizeOptions tokenize;
    tokenize.model = absl::GetFlag(FLAGS_model);
    tokenize.add_special = absl::GetFlag(FLAGS_add_special);
    tokenize.parse_special = absl::GetFlag(FLAGS_parse_special);
    tokenize.render_special = absl::GetFlag(FLAGS_render_special);
    // Text from the arguments (joined by spaces) or standard input byte for byte.
    const std::string input =
        args.size() > 2 ? absl::StrJoin(args.begin() + 2, args.end(), " ") : StandardInput();
    return command == "tokenize" ? slm::slmctl::Tokenize(tokenize, input)
                                 : slm::slmctl::Detokenize(tokenize, input);
  }
  if (command == "eval") {
    if (args.size() != 3) {
      std::cerr << "usage: slmctl eval --format clinc150|banking77|sst2|conll|mixed [--task T] "
                   "[--expect_route R] [--labels a,b] [--limit N] [--json] FILE\n";
      return 2;
    }
    slm::slmctl::EvalOptions eval;
    eval.format = absl::GetFlag(FLAGS_format);
    eval.file = args[2];
    eval.expect_route = absl::GetFlag(FLAGS_expect_route);
    eval.labels = absl::GetFlag(FLAGS_labels);
    eval.limit = absl::GetFlag(FLAGS_limit);
    return slm::slmctl::Eval(options, eval);
  }
  if (command == "validate-config") {
    if (args.size() != 3) {
      std::cerr << "usage: slmctl validate-config [--role all-in-one|router|worker] FILE\n";
      return 2;
    }
    return slm::slmctl::ValidateConfig(args[2], absl::GetFlag(FLAGS_role));
  }
  std::cerr << "unknown command '" << command << "'\n" << kUsage << "\n";
  return 2;
}
