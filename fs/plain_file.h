// SPDX-License-Identifier: Apache-2.0
// PlainFile: what the mount serves for one file. For an encrypted file: the synthesized plain
// header followed by the decrypted data region, with chunks fetched through the shared
// ChunkCache and several missing chunks of one read decrypted in parallel. For any other file:
// the backing bytes as they are.
// Thread safety: Read, PlanReadAhead and PrefetchRun may be called concurrently; the only
// mutable state is the sequential-access detector (under its own mutex).
#ifndef CTFS_FS_PLAIN_FILE_H_
#define CTFS_FS_PLAIN_FILE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/random_access_file.h"
#include "base/result.h"
#include "fs/chunk_cache.h"
#include "fs/encrypted_file.h"
#include "fs/stream_activity.h"
#include "fs/worker_pool.h"

namespace ctfs::fs {

// ChunkSpans: the bytes of a read as spans into decrypted chunks, which `chunks` keeps alive.
struct ChunkSpans {
  std::vector<ByteSpan> spans;
  std::vector<ChunkCache::Chunk> chunks;
};

class PlainFile {
 public:
  // FromEncrypted wraps a verified EncryptedFile. `file_id` keys its chunks in `cache`.
  // `cache` and `pool` (may be null: no parallel decryption) must outlive the PlainFile.
  static std::unique_ptr<PlainFile> FromEncrypted(std::unique_ptr<EncryptedFile> file,
                                                  uint64_t file_id, ChunkCache* cache,
                                                  WorkerPool* pool);
  // OpenPassthrough serves `file` as is, `size` bytes long (the size the mount shows: reads
  // past the file's real end fail as truncated).
  static std::unique_ptr<PlainFile> OpenPassthrough(std::unique_ptr<RandomAccessFile> file,
                                                    uint64_t size);

  // ReleaseEncrypted hands back the EncryptedFile (this PlainFile is unusable afterwards).
  std::unique_ptr<EncryptedFile> ReleaseEncrypted() { return std::move(encrypted_); }

  uint64_t size() const { return size_; }
  bool encrypted() const { return encrypted_ != nullptr; }
  const EncryptedFile* encrypted_file() const { return encrypted_.get(); }

  // Read copies the bytes at [plain_off, plain_off + out.size()) clipped at EOF into `out` and
  // returns how many were copied (0 at or past EOF). DataLoss if any touched chunk fails
  // authentication: then nothing of the read is released (`out` is wiped).
  Result<size_t> Read(uint64_t plain_off, MutableByteSpan out) const;

  // CopyLead: how many bytes past a page boundary the buffer of a copied Read at `plain_off`
  // should start, so that neither the pread of tensors stored in plain into it nor the reply
  // out of it is a slow-distance kernel copy (fs/copy_alignment.h). Header bytes are copied in
  // user space and encrypted pieces out of the chunk cache, so only those two copies count.
  size_t CopyLead(uint64_t plain_off) const;

  // ReadSpans is Read without the copy: when [plain_off, plain_off + len) (clipped at EOF)
  // lies entirely in encrypted chunks, `out` gets spans into the (authenticated) cached chunks
  // and the result is true; at or past EOF, true with no spans. False, with nothing done,
  // when the range touches the header or a tensor stored in plain, or for a passthrough
  // file: use Read then.
  Result<bool> ReadSpans(uint64_t plain_off, size_t len, ChunkSpans& out) const;

  // How far to read ahead of a confirmed stream: twice what it has read, at least `first_len`,
  // at most `max_len` (0: nothing). Kernel readahead grows its window the same way; a reader
  // of the first bytes of a file only (a header probe) costs little decryption. With
  // `shared_by`, a read continuing a confirmed stream notes its file there (a read reaching
  // EOF ends it), and `max_len` is split among the files active in it
  // (StreamActivity::ShareOf, at least `min_share`); a unit (v1: a whole tensor) longer than
  // that share but not than `max_len` is still read ahead.
  struct AheadWindow {
    uint64_t first_len = 0;
    uint64_t max_len = 0;
    StreamActivity* shared_by = nullptr;
    uint64_t min_share = 0;
  };
  // PlanReadAhead is called after a read of [plain_off, plain_off + len). If that read
  // continues one of the last kReadStreams read streams of this file (starts within
  // min(`window.max_len`, kStreamSlack) of its end, either way: the kernel sends readahead
  // requests somewhat out of order; several readers may scan one file at once) and that stream
  // has had kConfirmReads reads, it returns the keys of the chunks in the stream's window after
  // the read (see AheadWindow) that are not cached yet, in file order; otherwise (random access,
  // a stream not yet confirmed, or a passthrough file) nothing (see ContinueStream). A scan from
  // offset 0 counts as confirmed at once. Chunks larger than `window.max_len` (v1 whole
  // tensors) are skipped.
  std::vector<ChunkCache::Key> PlanReadAhead(uint64_t plain_off, uint64_t len,
                                             AheadWindow window) const;

  // RunHead maps a chunk from PlanReadAhead to its decrypt-ahead run: runs are aligned groups
  // of consecutive chunks of one tensor, `run_len` bytes (at least one chunk), read from disk
  // with one request. The head is the run's first chunk.
  ChunkCache::Key RunHead(const ChunkCache::Key& key, uint64_t run_len) const;
  // PrefetchRun loads the chunks of the run starting at `head` into the cache, except those
  // a reader got to first (ChunkCache::PrefetchRun). Errors are dropped: a read that needs a
  // chunk loads it again and reports them.
  void PrefetchRun(const ChunkCache::Key& head, uint64_t run_len) const;

  // Read streams told apart by PlanReadAhead; a further concurrent reader of the file makes the
  // least recently used one look like random access.
  static constexpr size_t kReadStreams = 4;
  // Reads a stream needs before it is decrypted ahead of: random readers land near each other
  // now and then, and a false "stream" costs a whole window of decryption.
  static constexpr uint64_t kConfirmReads = 3;
  // How far from a stream's end a read may start and still continue it: about the mount's
  // readahead window, whose requests arrive somewhat out of order.
  static constexpr uint64_t kStreamSlack = 4u << 20;

 private:
  PlainFile() = default;
  Status ReadEncryptedData(uint64_t data_off, MutableByteSpan out) const;
  // LoadUnit decrypts one unit for the cache.
  Status LoadUnit(size_t tensor, uint64_t unit, MutableByteSpan out) const;
  // RunUnits: chunks per decrypt-ahead run of `tensor`.
  uint64_t RunUnits(size_t tensor, uint64_t run_len) const;
  // FetchChunks gets the chunk of every encrypted piece through the cache (several in
  // parallel); chunks[i] stays null for a piece of a tensor stored in plain.
  Status FetchChunks(const std::vector<EncryptedFile::RangePiece>& pieces,
                     std::vector<ChunkCache::Chunk>& chunks) const;

  uint64_t size_ = 0;
  std::string path_;
  std::unique_ptr<RandomAccessFile> passthrough_;  // passthrough
  std::unique_ptr<EncryptedFile> encrypted_;  // encrypted
  uint64_t file_id_ = 0;
  ChunkCache* cache_ = nullptr;
  WorkerPool* pool_ = nullptr;

  // The sequential-access detector: where the last few read streams ended.
  struct ReadStream {
    uint64_t end = 0;        // plain offset after the stream's last read
    uint64_t last_use = 0;   // detector clock; 0 = slot unused
    uint64_t reads = 0;      // reads seen in this stream
    uint64_t lo = 0;         // lowest offset it read
    uint64_t hi = 0;         // highest end it read
    uint64_t bytes = 0;      // bytes it read
    bool confirmed = false;  // kConfirmReads reads, at least half of [lo, hi) read
  };
  // ContinueStream records a read of [plain_off, end). If it continues a confirmed stream (the
  // closest within `window` of `plain_off`), it returns the bytes that stream has read, this
  // read included; nullopt otherwise (a read continuing no stream starts a new one, replacing
  // the least recently used). A stream is confirmed by kConfirmReads reads, each no further
  // from the last than the stream has read so far (or than it is long), that cover at least
  // half the range they span: random reads that happen to land within `window` of each other
  // are sparse and do not qualify.
  std::optional<uint64_t> ContinueStream(uint64_t plain_off, uint64_t end, uint64_t window) const;
  mutable Mutex streams_mu_;
  mutable std::array<ReadStream, kReadStreams> streams_ CTFS_GUARDED_BY(streams_mu_){};
  mutable uint64_t stream_clock_ CTFS_GUARDED_BY(streams_mu_) = 0;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_PLAIN_FILE_H_
