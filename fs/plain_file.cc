// SPDX-License-Identifier: Apache-2.0
#include "fs/plain_file.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "base/check.h"
#include "base/file_io.h"
#include "base/secret_bytes.h"
#include "fs/copy_alignment.h"

namespace ctfs::fs {

std::unique_ptr<PlainFile> PlainFile::FromEncrypted(std::unique_ptr<EncryptedFile> file,
                                                    uint64_t file_id, ChunkCache* cache,
                                                    WorkerPool* pool) {
  std::unique_ptr<PlainFile> f(new PlainFile());
  f->path_ = file->path();
  f->size_ = file->plain_file_len();
  f->encrypted_ = std::move(file);
  f->file_id_ = file_id;
  f->cache_ = cache;
  f->pool_ = pool;
  // A confirmed stream at offset 0: a scan from the start is sequential from its first read.
  MutexLock lock(f->streams_mu_);  // not shared yet; held for the analysis
  f->streams_[0].last_use = 1;
  f->streams_[0].confirmed = true;
  f->stream_clock_ = 1;
  return f;
}

std::unique_ptr<PlainFile> PlainFile::OpenPassthrough(std::unique_ptr<RandomAccessFile> file,
                                                      uint64_t size) {
  std::unique_ptr<PlainFile> f(new PlainFile());
  f->path_ = file->path();
  f->size_ = size;
  f->passthrough_ = std::move(file);
  return f;
}

Result<size_t> PlainFile::Read(uint64_t plain_off, MutableByteSpan out) const {
  if (plain_off >= size_ || out.empty()) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - plain_off));
  out = out.first(n);
  if (!encrypted_) {
    CTFS_RETURN_IF_ERROR(PreadExact(*passthrough_, out, plain_off));
    return n;
  }
  const Bytes& prefix = encrypted_->plain_prefix();
  size_t done = 0;
  if (plain_off < prefix.size()) {
    done = static_cast<size_t>(std::min<uint64_t>(n, prefix.size() - plain_off));
    std::memcpy(out.data(), prefix.data() + plain_off, done);
  }
  if (done < n) {
    const uint64_t data_off = plain_off + done - prefix.size();
    Status st = ReadEncryptedData(data_off, out.subspan(done));
    if (!st.ok()) {
      WipeMemory(out.data(), out.size());
      return st;
    }
  }
  return n;
}

size_t PlainFile::CopyLead(uint64_t plain_off) const {
  if (!encrypted_) return ChunkLead(plain_off, plain_off);
  // Every byte stored in plain lies the same distance further into the encrypted file than
  // into the served one: its data region starts at data_start() there and after the plain
  // prefix here. (Unsigned wrap-around keeps the distance modulo a page, all ChunkLead uses.)
  const uint64_t stored_minus_served =
      encrypted_->header().data_start() - encrypted_->plain_prefix().size();
  return ChunkLead(plain_off, plain_off + stored_minus_served);
}

Status PlainFile::LoadUnit(size_t tensor, uint64_t unit, MutableByteSpan out) const {
  return encrypted_->DecryptUnit(tensor, unit, out);
}

Status PlainFile::FetchChunks(const std::vector<EncryptedFile::RangePiece>& pieces,
                              std::vector<ChunkCache::Chunk>& chunks) const {
  chunks.assign(pieces.size(), nullptr);
  auto fetch = [&](size_t i) -> Status {
    const EncryptedFile::RangePiece& p = pieces[i];
    if (!p.encrypted) return Status::Ok();
    CTFS_ASSIGN_OR_RETURN(chunks[i],
                          cache_->GetOrLoad(
                              ChunkCache::Key{file_id_, p.tensor, p.unit}, p.unit_len,
                              [&](MutableByteSpan buf) { return LoadUnit(p.tensor, p.unit, buf); },
                              encrypted_->AuthUnitLead(p.tensor, p.unit, /*direct=*/false)));
    return Status::Ok();
  };
  const size_t encrypted_pieces = static_cast<size_t>(
      std::count_if(pieces.begin(), pieces.end(), [](const auto& p) { return p.encrypted; }));
  if (encrypted_pieces <= 1 || pool_ == nullptr) {
    for (size_t i = 0; i < pieces.size(); ++i) CTFS_RETURN_IF_ERROR(fetch(i));
    return Status::Ok();
  }
  std::mutex mu;
  Status first_error;
  pool_->ParallelFor(pieces.size(), [&](size_t i) {
    Status st = fetch(i);
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = st;
    }
  });
  return first_error;
}

Status PlainFile::ReadEncryptedData(uint64_t data_off, MutableByteSpan out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<EncryptedFile::RangePiece> pieces,
                        encrypted_->MapDataRange(data_off, out.size()));
  std::vector<ChunkCache::Chunk> chunks;
  CTFS_RETURN_IF_ERROR(FetchChunks(pieces, chunks));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const EncryptedFile::RangePiece& p = pieces[i];
    MutableByteSpan dst = out.subspan(p.out_off, p.take);
    if (!p.encrypted) {
      CTFS_RETURN_IF_ERROR(encrypted_->ReadTensorRange(p.tensor, p.skip, dst));
      continue;
    }
    std::memcpy(dst.data(), chunks[i]->span().data() + p.skip, p.take);
    cache_->NoteServed(ChunkCache::Key{file_id_, p.tensor, p.unit}, p.take);
  }
  return Status::Ok();
}

Result<bool> PlainFile::ReadSpans(uint64_t plain_off, size_t len, ChunkSpans& out) const {
  out.spans.clear();
  out.chunks.clear();
  const uint64_t prefix_len = encrypted_ ? encrypted_->plain_prefix().size() : 0;
  if (!encrypted_ || plain_off < prefix_len) return false;
  if (plain_off >= size_) return true;  // EOF: an empty reply
  const uint64_t n = std::min<uint64_t>(len, size_ - plain_off);
  CTFS_ASSIGN_OR_RETURN(std::vector<EncryptedFile::RangePiece> pieces,
                        encrypted_->MapDataRange(plain_off - prefix_len, n));
  for (const EncryptedFile::RangePiece& p : pieces) {
    if (!p.encrypted) return false;
  }
  CTFS_RETURN_IF_ERROR(FetchChunks(pieces, out.chunks));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const EncryptedFile::RangePiece& p = pieces[i];
    out.spans.push_back(out.chunks[i]->span().subspan(p.skip, p.take));
    cache_->NoteServed(ChunkCache::Key{file_id_, p.tensor, p.unit}, p.take);
  }
  return true;
}

std::vector<ChunkCache::Key> PlainFile::PlanReadAhead(uint64_t plain_off, uint64_t len,
                                                      AheadWindow window) const {
  std::vector<ChunkCache::Key> keys;
  if (!encrypted_ || window.max_len == 0 || plain_off >= size_) return keys;
  const uint64_t end = std::min(plain_off + len, size_);
  const std::optional<uint64_t> streamed =
      ContinueStream(plain_off, end, std::min(window.max_len, kStreamSlack));
  const uint64_t prefix_len = encrypted_->plain_prefix().size();
  // Files, not streams, share the budget: one sequential reader looks like several streams
  // of its file when its readahead requests arrive out of order.
  const StreamActivity::Clock::time_point now = StreamActivity::Clock::now();
  if (window.shared_by != nullptr && end >= size_) window.shared_by->End(file_id_, now);
  if (!streamed || end >= size_) return keys;
  uint64_t max_len = window.max_len;
  if (window.shared_by != nullptr) {
    window.shared_by->Note(file_id_, now);
    max_len = StreamActivity::ShareOf(max_len, window.shared_by->Active(now), window.min_share);
  }
  const uint64_t ahead_len =
      std::min(max_len, std::max(window.first_len, 2 * std::min(*streamed, max_len)));
  const uint64_t ahead_off = std::max(end, prefix_len) - prefix_len;
  const uint64_t data_len = size_ - prefix_len;
  auto pieces = encrypted_->MapDataRange(ahead_off, std::min(ahead_len, data_len - ahead_off));
  if (!pieces.ok()) return keys;
  for (const EncryptedFile::RangePiece& p : *pieces) {
    // A unit (v1: a whole tensor) longer than a shared window but not than the whole one is
    // still read ahead.
    if (!p.encrypted || p.unit_len > window.max_len) continue;
    ChunkCache::Key key{file_id_, p.tensor, p.unit};
    if (!keys.empty() && keys.back() == key) continue;
    if (cache_->WantsPrefetch(key)) keys.push_back(key);
  }
  return keys;
}

std::optional<uint64_t> PlainFile::ContinueStream(uint64_t plain_off, uint64_t end,
                                                  uint64_t window) const {
  MutexLock lock(streams_mu_);
  const uint64_t now = ++stream_clock_;
  ReadStream* best = nullptr;
  uint64_t best_dist = UINT64_MAX;
  for (ReadStream& s : streams_) {
    if (s.last_use == 0) continue;
    const uint64_t dist = plain_off > s.end ? plain_off - s.end : s.end - plain_off;
    if (dist <= window && dist < best_dist) {
      best = &s;
      best_dist = dist;
    }
  }
  const bool continues = best != nullptr;
  if (!continues) {
    best = &*std::min_element(
        streams_.begin(), streams_.end(),
        [](const ReadStream& a, const ReadStream& b) { return a.last_use < b.last_use; });
  }
  ReadStream& st = *best;
  const uint64_t len = end - plain_off;
  // An unconfirmed stream restarts at a read further from it than it has read so far (or
  // than this read is long): sparse reads never build up to a stream, dense ones soon do.
  const bool restart = !continues || (!st.confirmed && best_dist > std::max(len, st.bytes));
  if (restart) st = ReadStream{.lo = plain_off, .hi = end};
  st.end = end;
  st.last_use = now;
  st.reads++;
  st.lo = std::min(st.lo, plain_off);
  st.hi = std::max(st.hi, end);
  st.bytes += len;
  if (st.reads >= kConfirmReads && 2 * st.bytes >= st.hi - st.lo) st.confirmed = true;
  if (!continues || !st.confirmed) return std::nullopt;
  return st.bytes;
}

uint64_t PlainFile::RunUnits(size_t tensor, uint64_t run_len) const {
  return std::max<uint64_t>(1, run_len / encrypted_->AuthUnitLen(tensor, 0));
}

ChunkCache::Key PlainFile::RunHead(const ChunkCache::Key& key, uint64_t run_len) const {
  CTFS_CHECK(encrypted_ && key.file_id == file_id_);
  const uint64_t run_units = RunUnits(static_cast<size_t>(key.tensor), run_len);
  return ChunkCache::Key{key.file_id, key.tensor, key.unit - key.unit % run_units};
}

void PlainFile::PrefetchRun(const ChunkCache::Key& head, uint64_t run_len) const {
  CTFS_CHECK(encrypted_ && head.file_id == file_id_);
  const EncryptedFile& ef = *encrypted_;
  const size_t tensor = static_cast<size_t>(head.tensor);
  const uint64_t end = std::min(head.unit + RunUnits(tensor, run_len), ef.NumAuthUnits(tensor));
  std::vector<ChunkCache::Key> keys;
  std::vector<size_t> lens, leads;
  for (uint64_t unit = head.unit; unit < end; ++unit) {
    keys.push_back(ChunkCache::Key{file_id_, head.tensor, unit});
    lens.push_back(static_cast<size_t>(ef.AuthUnitLen(tensor, unit)));
    leads.push_back(ef.AuthUnitLead(tensor, unit, ef.direct_reads()));
  }
  cache_->PrefetchRun(
      keys, lens,
      [&](std::span<ChunkCache::RunSlot> slots, const auto& ready) {
        std::vector<EncryptedFile::RunUnit> units(slots.size());
        for (size_t k = 0; k < slots.size(); ++k) {
          units[k].unit = keys[slots[k].index].unit;
          units[k].out = slots[k].buf;
        }
        ef.DecryptRun(tensor, units, [&](size_t k) {
          slots[k].status = std::move(units[k].status);
          ready(k);
        });
      },
      leads);
}

}  // namespace ctfs::fs
