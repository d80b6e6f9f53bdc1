// The semantic tier's question and guards: see semantic.h.
#include "cache/semantic.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "canonical/json.h"

namespace sluice::cache {

namespace {

namespace json = boost::json;

// What the user's text is replaced by in the rest of the question: a JSON string no client
// sends (it holds a control character), so the rest alone never matches a real request's form.
constexpr std::string_view kMarker = "\x01question";

bool nonempty(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return false;
  if (const json::array* a = v->if_array()) return !a->empty();
  if (const json::object* ob = v->if_object()) return !ob->empty();
  return true;
}

// The text of a content that is a string or an array of text parts whose type is one of
// `types` ("text", "input_text"); nullopt for anything else (images, audio, files, ...).
std::optional<std::string> text_of(const json::value& content,
                                   std::initializer_list<std::string_view> types) {
  if (const json::string* s = content.if_string()) return std::string(*s);
  const json::array* parts = content.if_array();
  if (parts == nullptr || parts->empty()) return std::nullopt;
  std::string out;
  for (const json::value& p : *parts) {
    const json::object* po = p.if_object();
    if (po == nullptr) return std::nullopt;
    const json::value* type = po->if_contains("type");
    const json::value* text = po->if_contains("text");
    if (type == nullptr || !type->is_string() || text == nullptr || !text->is_string()) {
      return std::nullopt;
    }
    if (std::find(types.begin(), types.end(), std::string_view(type->as_string())) == types.end()) {
      return std::nullopt;
    }
    if (!out.empty()) out += '\n';
    out += std::string_view(text->as_string());
  }
  return out;
}

std::string_view role_of(const json::object& m) {
  const json::value* r = m.if_contains("role");
  return r != nullptr && r->is_string() ? std::string_view(r->as_string()) : std::string_view();
}

// Chat, Messages and Responses message lists: instructions (roles in `instruction_roles`, text
// only) and exactly one user message. Replaces the user's content by the marker; returns its text.
std::optional<std::string> take_user_text(json::array& messages,
                                          std::initializer_list<std::string_view> instruction_roles,
                                          std::initializer_list<std::string_view> part_types,
                                          bool responses_items) {
  json::value* user = nullptr;
  std::string text;
  for (json::value& m : messages) {
    json::object* mo = m.if_object();
    if (mo == nullptr) return std::nullopt;
    if (responses_items) {
      const json::value* type = mo->if_contains("type");
      if (type != nullptr && !(type->is_string() && type->as_string() == "message")) return std::nullopt;
    }
    const json::value* content = mo->if_contains("content");
    if (content == nullptr) return std::nullopt;
    const std::string_view role = role_of(*mo);
    auto t = text_of(*content, part_types);
    if (!t) return std::nullopt;
    if (role == "user") {
      if (user != nullptr) return std::nullopt;  // multi-turn
      user = &(*mo)["content"];
      text = std::move(*t);
    } else if (std::find(instruction_roles.begin(), instruction_roles.end(), role) ==
               instruction_roles.end()) {
      return std::nullopt;  // an assistant turn, a tool result, ...
    }
  }
  if (user == nullptr) return std::nullopt;
  *user = kMarker;
  return text;
}

}  // namespace

Result<std::optional<Question>> semantic_question(Api api, std::string_view body) {
  auto parsed = canonical::parse_json(body);
  if (!parsed || !parsed->is_object()) return canonical::invalid("The request body must be a JSON object.");
  json::object& o = parsed->as_object();
  for (std::string_view k : {"tools", "functions", "audio"}) {
    if (nonempty(o, k)) return std::optional<Question>();
  }
  if (const json::value* m = o.if_contains("modalities"); m != nullptr && m->is_array()) {
    for (const json::value& x : m->as_array()) {
      if (!(x.is_string() && x.as_string() == "text")) return std::optional<Question>();
    }
  }
  std::optional<std::string> text;
  switch (api) {
    case Api::chat:
    case Api::messages: {
      json::value* msgs = o.if_contains("messages");
      if (msgs == nullptr || !msgs->is_array()) return std::optional<Question>();
      if (api == Api::chat) {
        text = take_user_text(msgs->as_array(), {"system", "developer"}, {"text"}, false);
      } else {
        text = take_user_text(msgs->as_array(), {}, {"text"}, false);
        if (const json::value* s = o.if_contains("system"); s != nullptr && !s->is_null() &&
                                                               !text_of(*s, {"text"})) {
          return std::optional<Question>();
        }
      }
      break;
    }
    case Api::responses: {
      json::value* input = o.if_contains("input");
      if (input == nullptr) return std::optional<Question>();
      if (input->is_string()) {
        text = std::string(input->as_string());
        *input = kMarker;
      } else if (input->is_array()) {
        text = take_user_text(input->as_array(), {"system", "developer"}, {"input_text", "text"}, true);
      }
      break;
    }
    case Api::gemini: {
      json::value* contents = o.if_contains("contents");
      if (contents == nullptr || !contents->is_array() || contents->as_array().size() != 1) {
        return std::optional<Question>();
      }
      json::object* c = contents->as_array()[0].if_object();
      if (c == nullptr) return std::optional<Question>();
      if (const std::string_view role = role_of(*c); !(role.empty() || role == "user")) {
        return std::optional<Question>();
      }
      json::value* parts = c->if_contains("parts");
      if (parts == nullptr || !parts->is_array() || parts->as_array().empty()) {
        return std::optional<Question>();
      }
      std::string t;
      for (const json::value& p : parts->as_array()) {
        const json::object* po = p.if_object();
        const json::value* pt = po != nullptr && po->size() == 1 ? po->if_contains("text") : nullptr;
        if (pt == nullptr || !pt->is_string()) return std::optional<Question>();
        if (!t.empty()) t += '\n';
        t += std::string_view(pt->as_string());
      }
      text = std::move(t);
      *parts = kMarker;
      break;
    }
  }
  if (!text || text->find_first_not_of(" \t\r\n") == std::string::npos) return std::optional<Question>();
  auto rest = canonical_form(api, canonical::to_text(*parsed));
  if (!rest) return std::move(rest.error());
  return std::optional<Question>(Question{std::move(*rest), std::move(*text)});
}

// ---- the guards ----

namespace {

struct Token {
  std::string lower;          // the word, lower-cased (ASCII)
  bool capitalised = false;   // its first letter is an upper-case ASCII letter
  bool sentence_start = false;
  bool has_digit = false;
  bool has_alpha = false;
  bool inner_mark = false;    // a '.', '_' or '-' inside (an identifier, a version)
};

bool word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::vector<Token> tokens_of(std::string_view s) {
  std::vector<Token> out;
  bool sentence_start = true;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!word_byte(c)) {
      if (c == '.' || c == '!' || c == '?' || c == ':' || c == '\n' || c == ';') sentence_start = true;
      ++i;
      continue;
    }
    Token t;
    t.capitalised = std::isupper(c) != 0;
    t.sentence_start = sentence_start;
    sentence_start = false;
    while (i < s.size()) {
      const auto d = static_cast<unsigned char>(s[i]);
      // Joiners count only between two word bytes: 3.14, 1,000, don't, gpt-4o, snake_case.
      const bool joiner = (d == '.' || d == ',' || d == '\'' || d == '-') && i + 1 < s.size() &&
                          !t.lower.empty() &&
                          std::isalnum(static_cast<unsigned char>(s[i + 1])) &&
                          std::isalnum(static_cast<unsigned char>(s[i - 1]));
      if (!word_byte(d) && !joiner) break;
      if (d == '_' || (joiner && d != ',' && d != '\'')) t.inner_mark = true;
      if (std::isdigit(d)) t.has_digit = true;
      if (std::isalpha(d)) t.has_alpha = true;
      if (d != ',') t.lower += static_cast<char>(std::tolower(d));
      ++i;
    }
    out.push_back(std::move(t));
  }
  return out;
}

constexpr auto kNumberWords = std::to_array<std::string_view>({
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    "hundred", "thousand", "million", "billion", "trillion", "dozen", "half", "quarter",
    "double", "triple", "twice", "first", "second", "third", "fourth", "fifth", "tenth",
    "percent"});

constexpr auto kNegations = std::to_array<std::string_view>({
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without",
    "cannot", "dont", "doesnt", "isnt", "cant", "wont"});

// Words whose swap for an opposite changes the answer. A paraphrase that uses a synonym from
// the list ("biggest" for "largest") is a miss: safe, if wasteful.
constexpr auto kOpposites = std::to_array<std::string_view>({
    "before", "after", "largest", "smallest", "biggest", "big", "small", "bigger", "smaller",
    "large", "little", "max", "maximum", "min", "minimum", "more", "less", "fewer", "most",
    "least", "increase", "decrease", "higher", "lower", "highest", "lowest", "high", "low",
    "above", "below", "over", "under", "last", "best", "worst", "better", "worse", "cheapest",
    "cheaper", "expensive", "early", "late", "earlier", "later", "earliest", "latest", "old",
    "new", "older", "newer", "oldest", "newest", "young", "younger", "youngest", "add", "remove",
    "delete", "true", "false", "yes", "buy", "sell", "open", "close", "enable", "disable",
    "start", "stop", "begin", "end", "import", "export", "encrypt", "decrypt", "encode",
    "decode", "left", "right", "north", "south", "east", "west", "up", "down", "inside",
    "outside", "include", "exclude", "positive", "negative", "hot", "cold", "fast", "slow",
    "long", "short", "heavy", "light", "ascending", "descending", "accept", "reject", "allow",
    "deny", "past", "future", "previous", "next", "input", "output", "upload", "download"});

// Words that carry no subject of their own: a paraphrase may add, drop or swap them.
constexpr auto kStopwords = std::to_array<std::string_view>({
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does",
    "did", "done", "doing", "have", "has", "had", "having", "can", "could", "would", "should",
    "will", "shall", "may", "might", "must", "i", "me", "my", "mine", "you", "your", "yours",
    "we", "us", "our", "he", "him", "his", "she", "her", "it", "its", "they", "them", "their",
    "this", "that", "these", "those", "what", "which", "who", "whom", "whose", "when", "where",
    "why", "how", "of", "in", "on", "at", "by", "for", "with", "about", "as", "to", "into",
    "from", "than", "vs", "versus", "and", "or", "if", "then", "so", "such", "there", "here",
    "please", "kindly", "tell", "explain", "show", "give", "let", "know", "want", "need", "like",
    "just", "really", "very", "quite", "some", "any", "all", "each", "every", "also", "too",
    "again", "way", "ways", "thing", "things", "something", "anything", "exactly", "quick",
    "quickly", "briefly", "simple", "simply", "hi", "hello", "hey", "thanks", "thank", "okay",
    "ok", "well", "get", "got", "make", "use", "using", "one's", "s", "t", "describe",
    "define", "mean", "means", "meaning", "help", "question", "wondering", "curious", "possible"});

template <size_t N>
bool listed(const std::array<std::string_view, N>& list, std::string_view w) {
  return std::find(list.begin(), list.end(), w) != list.end();
}

bool negation(const Token& t) {
  return listed(kNegations, t.lower) || t.lower.ends_with("n't");
}

struct Facts {
  std::vector<std::string> numbers;    // sorted
  std::vector<std::string> opposites;  // sorted
  int negations = 0;
  std::vector<std::string> names;      // capitalised inner words and identifiers
  std::vector<std::string> quoted;     // lower-cased quoted spans
  std::vector<std::string> words;      // every word, sorted (for lookups)
  std::vector<std::string> content;    // the subject words (normalised), in text order
  std::vector<std::string> sequence;   // the subject words and the numbers, in text order
};

// A word's spelling variants made one: contractions and possessives dropped, plurals made
// singular, British endings made American (colour/color, optimise/optimize, centre/center).
std::string normalised(std::string w) {
  for (std::string_view tail : {"'s", "'re", "'ll", "'ve", "'d", "'m"}) {
    if (w.size() > tail.size() && w.ends_with(tail)) {
      w.resize(w.size() - tail.size());
      break;
    }
  }
  auto swap_tail = [&w](std::string_view from, std::string_view to) {
    if (w.size() > from.size() + 2 && w.ends_with(from)) {
      w.replace(w.size() - from.size(), from.size(), to);
      return true;
    }
    return false;
  };
  if (!swap_tail("ies", "y") && !swap_tail("sses", "ss") && !swap_tail("ches", "ch") &&
      !swap_tail("shes", "sh") && !swap_tail("xes", "x") && w.size() > 3 && w.ends_with('s') &&
      !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is")) {
    w.pop_back();
  }
  swap_tail("our", "or") || swap_tail("ise", "ize") || swap_tail("ised", "ized") ||
      swap_tail("ising", "izing") || swap_tail("yse", "yze") || swap_tail("tre", "ter");
  return w;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> quoted_spans(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view q : {std::string_view("\""), std::string_view("`"), std::string_view("\xE2\x80\x9C")}) {
    const std::string_view close = q == "\xE2\x80\x9C" ? std::string_view("\xE2\x80\x9D") : q;
    size_t at = 0;
    while ((at = s.find(q, at)) != std::string_view::npos) {
      const size_t end = s.find(close, at + q.size());
      if (end == std::string_view::npos) break;
      std::string span = lower(s.substr(at + q.size(), end - at - q.size()));
      if (!span.empty()) out.push_back(std::move(span));
      at = end + close.size();
    }
  }
  return out;
}

Facts facts_of(std::string_view s) {
  Facts f;
  for (const Token& t : tokens_of(s)) {
    f.words.push_back(t.lower);
    if (negation(t)) ++f.negations;
    if ((t.has_digit && !t.has_alpha) || listed(kNumberWords, t.lower)) {
      f.numbers.push_back(t.lower);
    } else if (t.has_digit || t.inner_mark || (t.capitalised && !t.sentence_start && t.lower != "i")) {
      f.names.push_back(t.lower);
    }
    if (listed(kOpposites, t.lower)) f.opposites.push_back(t.lower);
    const bool number = (t.has_digit && !t.has_alpha) || listed(kNumberWords, t.lower);
    if (number) {
      f.sequence.push_back(t.lower);
    } else if (!listed(kStopwords, t.lower) && !negation(t)) {
      f.content.push_back(normalised(t.lower));
      f.sequence.push_back(f.content.back());
    }
  }
  std::sort(f.numbers.begin(), f.numbers.end());
  std::sort(f.opposites.begin(), f.opposites.end());
  std::sort(f.words.begin(), f.words.end());
  f.quoted = quoted_spans(s);
  return f;
}

// Every name of `a` is a word of `b`, and every quoted span of `a` is in `b`'s text.
bool names_in(const Facts& a, const Facts& b, std::string_view b_lower) {
  for (const std::string& n : a.names) {
    if (!std::binary_search(b.words.begin(), b.words.end(), n)) return false;
  }
  for (const std::string& q : a.quoted) {
    if (b_lower.find(q) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

const char* guard_refuses(std::string_view a, std::string_view b) {
  const Facts fa = facts_of(a);
  const Facts fb = facts_of(b);
  if (fa.numbers != fb.numbers) return "numbers";
  if (fa.negations != fb.negations) return "negation";
  if (fa.opposites != fb.opposites) return "opposites";
  if (!names_in(fa, fb, lower(b)) || !names_in(fb, fa, lower(a))) return "names";
  // A subject word on each side that the other lacks: one was swapped for another (python /
  // julia, safe / unsafe, list / set). Only adding or dropping words is a paraphrase here; a
  // synonym ("undo" / "revert") is a miss — safe, if wasteful.
  std::vector<std::string> ca = fa.content, cb = fb.content;
  std::sort(ca.begin(), ca.end());
  std::sort(cb.begin(), cb.end());
  ca.erase(std::unique(ca.begin(), ca.end()), ca.end());
  cb.erase(std::unique(cb.begin(), cb.end()), cb.end());
  const bool a_only = !std::includes(cb.begin(), cb.end(), ca.begin(), ca.end());
  const bool b_only = !std::includes(ca.begin(), ca.end(), cb.begin(), cb.end());
  if (a_only && b_only) return "words";
  // The shared subject words (and numbers) in another order: "convert PDF to Word" / "convert
  // Word to PDF", "kilometers in 5 miles" / "miles in 5 kilometers", "how does A interact with
  // B" / "how does B interact with A". A reordered paraphrase ("Which country is Paris in?" /
  // "Paris is in which country?") is refused too: safe, if wasteful.
  {
    const std::vector<std::string>& shared = a_only ? cb : ca;  // the smaller set
    auto order = [&](const std::vector<std::string>& words) {
      std::vector<std::string> out;
      for (const std::string& w : words) {
        const bool kept = std::binary_search(shared.begin(), shared.end(), w) ||
                          std::binary_search(fa.numbers.begin(), fa.numbers.end(), w);
        if (kept &&
            std::find(out.begin(), out.end(), w) == out.end()) {
          out.push_back(w);
        }
      }
      return out;
    };
    if (order(fa.sequence) != order(fb.sequence)) return "order";
  }
  return nullptr;
}

}  // namespace sluice::cache
