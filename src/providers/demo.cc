// Demo provider text.
#include "providers/demo.h"

namespace sluice::providers {

std::string demo_answer(std::string_view prompt) {
  constexpr size_t kEchoLimit = 200;
  std::string echo(prompt.substr(0, kEchoLimit));
  for (char& c : echo) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (prompt.size() > kEchoLimit) echo += "...";
  std::string out = "Hello from Sluice's built-in demo model, answering offline. ";
  if (echo.empty()) {
    out += "You sent no user message.";
  } else {
    out += "You said: \"" + echo + "\".";
  }
  out += " Route a model to a real provider in config/sluice.yaml to get real answers.";
  return out;
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t sp = text.find(' ', i);
    size_t end = sp == std::string_view::npos ? text.size() : sp + 1;
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace sluice::providers
