#include "cache/cache_policy.h"

#include "util/error.h"

namespace dip {

CachePolicy parse_cache_policy(const std::string& name) {
  if (name == "lru") return CachePolicy::kLru;
  if (name == "lfu") return CachePolicy::kLfu;
  fail("unknown cache policy '{}' (lru, lfu)", name);
}

const char* cache_policy_name(CachePolicy p) { return p == CachePolicy::kLru ? "lru" : "lfu"; }

}  // namespace dip
