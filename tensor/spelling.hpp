// "Did you mean …": the known name closest to a mistyped one, for the
// messages that refuse an unknown config key, command or flag.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attnlab {

// Levenshtein distance: the fewest insertions, deletions and substitutions
// that turn a into b.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` when it is close enough to be a typo of it
// (at most max(2, a third of its length) edits away); the first of equals.
std::optional<std::string> closest_spelling(const std::string& word,
                                            const std::vector<std::string>& candidates);

}  // namespace attnlab
