/// The Lua scripts that keep entries, their tag index and purge records consistent in Redis.
/// Each runs atomically, so a store and a purge never interleave.
///
/// Keys, all under the configured prefix `P`:
///
/// | key              | type       | holds                                                               |
/// |------------------|------------|---------------------------------------------------------------------|
/// | `P v2:<digest>`  | string     | an entry (``CacheEntryCodec``), expiring after TTL + grace           |
/// | `P i:t:<tag>`    | sorted set | digests of the entries with that tag, scored by expiry (ms)         |
/// | `P i:u:<url>`    | sorted set | digests of the entries of that URL (path and normalized query)      |
/// | `P paths`        | sorted set | `<path> <digest>` for every entry, all score 0 (prefix purges, by lex range) |
/// | `P expiry`       | sorted set | the same members scored by expiry, to clean `paths`                 |
/// | `P seq`          | integer    | the purge generation: incremented by every purge                    |
/// | `P p:<index>`    | integer    | the generation of that index's last purge (kept for ``CacheIndexScripts/purgeRecordLifetime``) |
/// | `P p-all`        | integer    | the generation of the last prefix purge                             |
///
/// A lookup reads `P seq` with the entry (one `MGET`); a store passes that generation and is
/// refused when any of its indexes (or a prefix purge) has been purged since: a response whose
/// fetch began before a purge is never stored after it.
///
/// Bounds: every store trims its indexes' expired members and sets each index to expire with
/// its newest member, and removes up to 64 expired members of `paths`/`expiry` (which also
/// expire with their newest member); so an index holds at most the live entries plus those
/// expired since its last store, and disappears with its last entry.
enum CacheIndexScripts {
    /// How long purge records are kept; a fetch that takes longer is not stored.
    static let purgeRecordLifetime: Int64 = 15 * 60 * 1000

    /// ARGV: prefix, digest, value, lifetime ms, generation, path, index names…
    /// Returns 1 when stored, 0 when refused (purged since the generation).
    static let store = RedisScript(
        """
        local p, digest, life, gen = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
        if tonumber(redis.call('GET', p .. 'p-all') or '0') > gen then return 0 end
        for i = 7, #ARGV do
          if tonumber(redis.call('GET', p .. 'p:' .. ARGV[i]) or '0') > gen then return 0 end
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local expiry = now + life
        redis.call('SET', p .. 'v2:' .. digest, ARGV[3], 'PX', life)
        for i = 7, #ARGV do
          local k = p .. 'i:' .. ARGV[i]
          redis.call('ZADD', k, expiry, digest)
          redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
          if redis.call('PTTL', k) < life then redis.call('PEXPIRE', k, life) end
        end
        local member = ARGV[6] .. ' ' .. digest
        redis.call('ZADD', p .. 'paths', 0, member)
        redis.call('ZADD', p .. 'expiry', expiry, member)
        if redis.call('PTTL', p .. 'expiry') < life then
          redis.call('PEXPIRE', p .. 'expiry', life)
          redis.call('PEXPIRE', p .. 'paths', life)
        end
        local old = redis.call('ZRANGEBYSCORE', p .. 'expiry', '-inf', now, 'LIMIT', 0, 64)
        if #old > 0 then
          redis.call('ZREM', p .. 'expiry', unpack(old))
          redis.call('ZREM', p .. 'paths', unpack(old))
        end
        return 1
        """)

    /// ARGV: prefix, soft (1/0), record lifetime ms, index names…
    /// Returns how many entries were removed (or marked stale).
    static let purgeIndexes = RedisScript(
        """
        local p, soft, rttl = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
        local gen = redis.call('INCR', p .. 'seq')
        local seen, n = {}, 0
        for i = 4, #ARGV do
          local k = p .. 'i:' .. ARGV[i]
          for _, digest in ipairs(redis.call('ZRANGE', k, 0, -1)) do
            if not seen[digest] then
              seen[digest] = true
              local e = p .. 'v2:' .. digest
              if soft then
                if redis.call('EXISTS', e) == 1 then
                  redis.call('SETRANGE', e, 1, '\\1')
                  n = n + 1
                end
              else
                n = n + redis.call('DEL', e)
              end
            end
          end
          if not soft then redis.call('DEL', k) end
          redis.call('SET', p .. 'p:' .. ARGV[i], gen, 'PX', rttl)
        end
        return n
        """)

    /// ARGV: prefix, soft (1/0), record lifetime ms, path prefix.
    /// Returns how many entries were removed (or marked stale).
    static let purgePrefix = RedisScript(
        """
        local p, soft, rttl, prefix = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3]), ARGV[4]
        local gen = redis.call('INCR', p .. 'seq')
        redis.call('SET', p .. 'p-all', gen, 'PX', rttl)
        local members = redis.call('ZRANGEBYLEX', p .. 'paths', '[' .. prefix, '[' .. prefix .. '\\255')
        local n = 0
        for _, member in ipairs(members) do
          local e = p .. 'v2:' .. string.sub(member, -64)
          if soft then
            if redis.call('EXISTS', e) == 1 then
              redis.call('SETRANGE', e, 1, '\\1')
              n = n + 1
            end
          else
            n = n + redis.call('DEL', e)
            redis.call('ZREM', p .. 'paths', member)
            redis.call('ZREM', p .. 'expiry', member)
          end
        end
        return n
        """)
}
