// SPDX-License-Identifier: Apache-2.0
#include "config/rfc3339.h"

namespace ctfs::config {
namespace {

// Digits reads `n` decimal digits at `pos` (advancing it); -1 if they are not all digits.
int Digits(std::string_view s, size_t& pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  pos += n;
  return v;
}

bool Expect(std::string_view s, size_t& pos, std::string_view chars) {
  if (pos >= s.size() || chars.find(s[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// DaysFromCivil: days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  size_t pos = 0;
  const int year = Digits(s, pos, 4);
  if (year < 1 || !Expect(s, pos, "-")) return std::nullopt;
  const int month = Digits(s, pos, 2);
  if (month < 1 || month > 12 || !Expect(s, pos, "-")) return std::nullopt;
  const int day = Digits(s, pos, 2);
  if (day < 1 || day > DaysInMonth(year, month) || !Expect(s, pos, "Tt ")) return std::nullopt;
  const int hour = Digits(s, pos, 2);
  if (hour < 0 || hour > 23 || !Expect(s, pos, ":")) return std::nullopt;
  const int minute = Digits(s, pos, 2);
  if (minute < 0 || minute > 59 || !Expect(s, pos, ":")) return std::nullopt;
  const int second = Digits(s, pos, 2);
  if (second < 0 || second > 60) return std::nullopt;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (Expect(s, pos, "Zz")) {
    // UTC
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    const int oh = Digits(s, pos, 2);
    if (oh < 0 || oh > 23 || !Expect(s, pos, ":")) return std::nullopt;
    const int om = Digits(s, pos, 2);
    if (om < 0 || om > 59) return std::nullopt;
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;  // no zone: the time would depend on the host's TZ
  }
  if (pos != s.size()) return std::nullopt;
  return DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
}

}  // namespace ctfs::config
