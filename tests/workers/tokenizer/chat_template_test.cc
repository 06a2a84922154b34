// Chat templates against the strings each family's official Jinja template renders (written out
// by hand from the model cards' templates and llama.cpp's llm_chat_apply_template).
#include "workers/tokenizer/chat_template.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"

namespace slm::workers {
namespace {

using ::testing::HasSubstr;

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};

std::string Apply(ChatTemplateFamily family, bool add_generation_prompt = true) {
  auto text = ApplyChatTemplate(family, kConversation, add_generation_prompt);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(ChatTemplateTest, Chatml) {
  EXPECT_EQ(Apply(ChatTemplateFamily::kChatml),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Apply(ChatTemplateFamily::kChatml, false).find("<|im_start|>assistant\n", 100),
            std::string::npos);
}

TEST(ChatTemplateTest, Phi3) {
  EXPECT_EQ(Apply(ChatTemplateFamily::kPhi3),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\n2+2?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplateTest, Zephyr) {
  EXPECT_EQ(Apply(ChatTemplateFamily::kZephyr),
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
            "<|user|>\n2+2?</s>\n<|assistant|>\n");
}

TEST(ChatTemplateTest, Llama2) {
  EXPECT_EQ(Apply(ChatTemplateFamily::kLlama2),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s>[INST] 2+2? [/INST]");
}

TEST(ChatTemplateTest, Mistral) {
  EXPECT_EQ(Apply(ChatTemplateFamily::kMistral),
            "[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] 2+2?[/INST]");
}

TEST(ChatTemplateTest, RejectsBadMessages) {
  EXPECT_THAT(std::string(ApplyChatTemplate(ChatTemplateFamily::kChatml, {}, true)
                              .status()
                              .message()),
              HasSubstr("no messages"));
  EXPECT_THAT(std::string(ApplyChatTemplate(ChatTemplateFamily::kChatml,
                                            {{"user", "a"}, {"tool", "b"}}, true)
                              .status()
                              .message()),
              HasSubstr("messages[1].role 'tool'"));
  EXPECT_FALSE(ChatTemplateFamilyFromName("jinja").ok());
  EXPECT_EQ(*ChatTemplateFamilyFromName("phi3"), ChatTemplateFamily::kPhi3);
}

TEST(ChatTemplateTest, DetectsFamilyFromMetadata) {
  // Phi-3's template as its GGUF carries it.
  EXPECT_EQ(*DetectChatTemplateFamilyFromJinja(
                "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
                "%}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + "
                "'<|assistant|>' + '\n'}}{% endif %}{% endfor %}"),
            ChatTemplateFamily::kPhi3);
  EXPECT_EQ(*DetectChatTemplateFamilyFromJinja("{{'<|im_start|>' + message['role']}}"),
            ChatTemplateFamily::kChatml);
  EXPECT_EQ(*DetectChatTemplateFamilyFromJinja("{{ '<|user|>\n' + message['content'] + "
                                               "eos_token }}"),
            ChatTemplateFamily::kZephyr);
  EXPECT_EQ(*DetectChatTemplateFamilyFromJinja("[INST] <<SYS>>"), ChatTemplateFamily::kLlama2);
  EXPECT_EQ(*DetectChatTemplateFamilyFromJinja("{{ '[INST] ' + content }}"),
            ChatTemplateFamily::kMistral);
  EXPECT_FALSE(DetectChatTemplateFamilyFromJinja("{{ content }}").ok());

  testing::GgufTestWriter qwen;
  qwen.AddString("general.architecture", "qwen2");
  auto file = GgufFile::FromBytes(qwen.Build(), "q.gguf");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*DetectChatTemplateFamily(**file), ChatTemplateFamily::kChatml);
  testing::GgufTestWriter unknown;
  unknown.AddString("general.architecture", "rwkv");
  auto unknown_file = GgufFile::FromBytes(unknown.Build(), "u.gguf");
  ASSERT_TRUE(unknown_file.ok());
  EXPECT_THAT(std::string(DetectChatTemplateFamily(**unknown_file).status().message()),
              HasSubstr("general.architecture 'rwkv'"));
}

}  // namespace
}  // namespace slm::workers
