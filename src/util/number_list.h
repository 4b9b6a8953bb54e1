// Comma-separated lists as flags give them ("25%,50%", "0.1,0.2").
#pragma once
#include <string>
#include <vector>

namespace dip {

// "a,b,,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_commas(const std::string& s);
// Comma-separated numbers; a non-number or an empty list is an error naming `what` (the flag).
std::vector<double> parse_number_list(const std::string& s, const char* what);

}  // namespace dip
