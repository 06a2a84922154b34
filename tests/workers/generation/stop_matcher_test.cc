// StopMatcher against a reference (cut the whole text at the earliest stop string) over every
// split of texts into pieces, so stop strings spanning several tokens are covered.
#include "workers/generation/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "workers/generation/sampler.h"

namespace slm::workers {
namespace {

std::string ReferenceCut(const std::string& text, const std::vector<std::string>& stops,
                         bool* stopped) {
  size_t earliest = std::string::npos;
  for (const std::string& stop : stops) {
    if (!stop.empty()) earliest = std::min(earliest, text.find(stop));
  }
  *stopped = earliest != std::string::npos;
  return text.substr(0, *stopped ? earliest : text.size());
}

TEST(StopMatcherTest, StopStringAcrossPieces) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(matcher.Push("hello E").text, "hello ");
  EXPECT_EQ(matcher.Push("N").text, "");
  const StopMatcher::Result result = matcher.Push("Dx");
  EXPECT_TRUE(result.stopped);
  EXPECT_EQ(result.text, "");
  EXPECT_EQ(matcher.Push("more").text, "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(matcher.Push("EN").text, "");
  EXPECT_EQ(matcher.Push("o").text, "ENo");
  EXPECT_EQ(matcher.Push("E").text, "");
  EXPECT_EQ(matcher.Flush(), "E");
}

TEST(StopMatcherTest, RandomSplitsMatchReference) {
  SplitMix64 random(99);
  const std::string alphabet = "abAB\n";
  const std::vector<std::vector<std::string>> stop_sets = {
      {}, {"ab"}, {"\n\n"}, {"aab", "ba"}, {"abab", "B"}, {"", "AAA"}};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int length = static_cast<int>(random.Next() % 20);
    for (int i = 0; i < length; ++i) text += alphabet[random.Next() % alphabet.size()];
    const std::vector<std::string>& stops = stop_sets[trial % stop_sets.size()];
    bool expected_stop = false;
    const std::string expected = ReferenceCut(text, stops, &expected_stop);
    StopMatcher matcher(stops);
    std::string emitted;
    bool stopped = false;
    for (size_t i = 0; i < text.size() && !stopped;) {
      const size_t piece = 1 + random.Next() % 4;
      StopMatcher::Result result = matcher.Push(text.substr(i, piece));
      // Emitted text never contains a stop string, even partially completed later.
      emitted += result.text;
      stopped = result.stopped;
      i += piece;
    }
    if (!stopped) emitted += matcher.Flush();
    EXPECT_EQ(emitted, expected) << "text '" << text << "' trial " << trial;
    EXPECT_EQ(stopped, expected_stop) << "text '" << text << "'";
  }
}

}  // namespace
}  // namespace slm::workers
