// Demo provider text.
#include "providers/demo.h"

#include <cctype>

namespace sluice::providers {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string snake(std::string_view s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// The facts of the user's lines of a turn by a few English patterns ("my name is", "I live
// in", "my X is Y", "I like", "I work as", "I have a"), as the session extraction prompt asks.
std::string demo_facts(std::string_view turn) {
  struct Rule {
    std::string_view pattern;  // lower-case, at the start of a sentence
    std::string_view key;      // "" = the words between "my " and " is "
    std::string_view text;     // the fact: text + what follows the pattern
  };
  static constexpr Rule kRules[] = {
      {"my name is ", "name", "The user's name is "},
      {"call me ", "name", "The user's name is "},
      {"i live in ", "home_city", "The user lives in "},
      {"i moved to ", "home_city", "The user lives in "},
      {"i work as ", "occupation", "The user works as "},
      {"i work at ", "employer", "The user works at "},
      {"i like ", "", "The user likes "},
      {"i love ", "", "The user loves "},
      {"i prefer ", "", "The user prefers "},
      {"i have a ", "", "The user has a "},
  };
  std::string facts;
  auto add = [&](std::string key, std::string text) {
    if (key.empty() || text.empty()) return;
    if (!facts.empty()) facts += ',';
    facts += "{\"key\":" + json_string(key) + ",\"text\":" + json_string(text) + ",\"weight\":0.6}";
  };
  size_t pos = 0;
  while (pos < turn.size()) {
    size_t end = turn.find('\n', pos);
    if (end == std::string_view::npos) end = turn.size();
    std::string_view line = turn.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with("user: ")) continue;
    line.remove_prefix(6);
    // Sentences, each checked against the rules.
    size_t s = 0;
    while (s < line.size()) {
      size_t e = line.find_first_of(".!?;", s);
      if (e == std::string_view::npos) e = line.size();
      std::string_view sentence = line.substr(s, e - s);
      s = e + 1;
      while (!sentence.empty() && sentence.front() == ' ') sentence.remove_prefix(1);
      const std::string low = lower(sentence);
      for (const Rule& r : kRules) {
        if (!low.starts_with(r.pattern)) continue;
        std::string rest(sentence.substr(r.pattern.size(), 80));
        while (!rest.empty() && rest.back() == ' ') rest.pop_back();
        std::string key(r.key);
        if (key.empty()) {
          std::string_view verb = r.pattern.substr(2);  // "like ", "have a "
          key = snake(verb.substr(0, verb.find(' '))) + "_" + snake(rest.substr(0, rest.find(' ')));
        }
        add(key, std::string(r.text) + rest);
        break;
      }
      if (low.starts_with("my ")) {  // "my X is Y"
        const size_t is = low.find(" is ");
        if (is != std::string::npos && is > 3) {
          std::string what = snake(sentence.substr(3, is - 3));
          if (what != "name") {
            add(what, "The user's " + std::string(sentence.substr(3, is - 3)) + " is " +
                          std::string(sentence.substr(is + 4, 80)));
          }
        }
      }
    }
  }
  return "{\"facts\":[" + facts + "]}";
}

}  // namespace

std::string demo_answer(std::string_view prompt) {
  // The gateway's own session extraction prompt (sessions/extract.h): facts by rule, so
  // memory extraction works offline on the embedded default.
  if (prompt.starts_with("Known topics: ")) {
    const size_t turn = prompt.find("\n\nTurn:\n");
    return demo_facts(turn == std::string_view::npos ? std::string_view()
                                                     : prompt.substr(turn + 8));
  }
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
