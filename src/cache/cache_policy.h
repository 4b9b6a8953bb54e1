// Which column a full cache evicts.
#pragma once
#include <cstdint>
#include <string>

namespace dip {

enum class CachePolicy : uint32_t { kLru = 0, kLfu = 1 };

CachePolicy parse_cache_policy(const std::string& name);
const char* cache_policy_name(CachePolicy p);

}  // namespace dip
