#include "util/number_list.h"

#include <cstdlib>
#include <sstream>

#include "util/error.h"

namespace dip {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) v.push_back(item);
  }
  return v;
}

std::vector<double> parse_number_list(const std::string& s, const char* what) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double x = std::strtod(item.c_str(), &end);
    if (item.empty() || *end) fail("{}: '{}' is not a number", what, item);
    v.push_back(x);
  }
  if (v.empty()) fail("{}: empty list", what);
  return v;
}

}  // namespace dip
