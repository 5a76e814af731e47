/// The Lua scripts that keep entries, their tag index and purge records consistent in Redis.
/// Each runs atomically, so a store and a purge never interleave.
///
/// Keys, all under the configured prefix `P`:
///
/// | key              | type       | holds                                                               |
/// |------------------|------------|---------------------------------------------------------------------|
/// | `P v2:<digest>`  | string     | an entry (``CacheEntryCodec``), expiring after TTL + grace           |
/// | `P i:t:<tag>`    | sorted set | digests of the entries with that tag, scored by expiry (ms)         |
/// | `P urls`         | sorted set | `<url> <digest>` for every entry, all score 0: URL and prefix purges by lex range (a URL has no spaces, see ``CacheIndexName/url(path:query:)``) |
/// | `P expiry`       | sorted set | the same members scored by expiry, to clean `urls`                  |
/// | `P seq`          | integer    | the purge generation: incremented by every purge                    |
/// | `P p:t:<tag>`    | integer    | the generation of that tag's last purge (kept for ``CacheIndexScripts/purgeRecordLifetime``) |
/// | `P p:u:<url>`    | integer    | the generation of that URL's last purge (same)                      |
/// | `P p-all`        | integer    | the generation of the last prefix purge                             |
///
/// A lookup reads `P seq` with the entry (one `MGET`); a store passes that generation and is
/// refused when any of its tags, its URL, or a prefix has been purged since: a response whose
/// fetch began before a purge is never stored after it.
///
/// Bounds: every store trims its tags' expired members and sets each tag's set to expire with
/// its newest member, and removes up to 64 expired members of `urls`/`expiry` (which also expire
/// with their newest member); so an index holds at most the live entries plus those expired
/// since its last store, and disappears with its last entry. Expiry scores use the storing
/// proxy's clock (skew between proxies only moves the clean-up, never a purge).
enum CacheIndexScripts {
    /// How long purge records are kept; a fetch that takes longer is not stored.
    static let purgeRecordLifetime: Int64 = 15 * 60 * 1000

    /// ARGV: prefix, digest, value, lifetime ms, generation, url, now ms, lease token (empty: none),
    /// tag index names (`t:…`)…
    /// Returns 1 when stored, 0 when refused (purged since the generation). Either way, a lease
    /// held with the token is released and the fill announced (one round trip for both).
    static let store = RedisScript(
        """
        local p, digest, life, gen, url, now = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
        local function release()
          if ARGV[8] ~= '' and redis.call('GET', p .. 'lease:' .. digest) == ARGV[8] then
            redis.call('DEL', p .. 'lease:' .. digest)
            redis.call('PUBLISH', p .. 'fills', digest)
          end
        end
        local purged = tonumber(redis.call('GET', p .. 'p-all') or '0') > gen
          or tonumber(redis.call('GET', p .. 'p:u:' .. url) or '0') > gen
        for i = 9, #ARGV do
          if purged then break end
          purged = tonumber(redis.call('GET', p .. 'p:' .. ARGV[i]) or '0') > gen
        end
        if purged then
          release()
          return 0
        end
        local expiry = now + life
        redis.call('SET', p .. 'v2:' .. digest, ARGV[3], 'PX', life)
        for i = 9, #ARGV do
          local k = p .. 'i:' .. ARGV[i]
          redis.call('ZADD', k, expiry, digest)
          redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
          if redis.call('PTTL', k) < life then redis.call('PEXPIRE', k, life) end
        end
        local member = url .. ' ' .. digest
        redis.call('ZADD', p .. 'urls', 0, member)
        redis.call('ZADD', p .. 'expiry', expiry, member)
        if redis.call('PTTL', p .. 'expiry') < life then
          redis.call('PEXPIRE', p .. 'expiry', life)
          redis.call('PEXPIRE', p .. 'urls', life)
        end
        local old = redis.call('ZRANGEBYSCORE', p .. 'expiry', '-inf', now, 'LIMIT', 0, 64)
        if #old > 0 then
          redis.call('ZREM', p .. 'expiry', unpack(old))
          redis.call('ZREM', p .. 'urls', unpack(old))
        end
        release()
        return 1
        """)

    /// ARGV: lease key, token, fill channel, digest, uncacheable marker key (empty: none), its
    /// lifetime ms. Deletes the lease only if the token still holds it, marks the key
    /// uncacheable when asked (waiting instances then fetch at once, all together), then
    /// publishes the digest on the channel (waiters look again).
    static let releaseLease = RedisScript(
        """
        if redis.call('GET', ARGV[1]) == ARGV[2] then
          redis.call('DEL', ARGV[1])
          if ARGV[5] ~= '' then redis.call('SET', ARGV[5], '1', 'PX', ARGV[6]) end
          redis.call('PUBLISH', ARGV[3], ARGV[4])
          return 1
        end
        return 0
        """)

    /// ARGV: lease key, token, ttl ms. Extends the lease only if the token still holds it.
    static let renewLease = RedisScript(
        """
        if redis.call('GET', ARGV[1]) == ARGV[2] then
          redis.call('PEXPIRE', ARGV[1], ARGV[3])
          return 1
        end
        return 0
        """)

    /// ARGV: prefix, soft (1/0), record lifetime ms, tag index names (`t:…`)…
    /// Returns how many entries were removed (or marked stale).
    static let purgeTags = RedisScript(
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

    /// ARGV: prefix, soft (1/0), record lifetime ms, url or path prefix, exact (1: the URL's
    /// entries only; 0: every URL that starts with it).
    /// Returns how many entries were removed (or marked stale).
    static let purgeURLs = RedisScript(
        """
        local p, soft, rttl, text, exact = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
        local gen = redis.call('INCR', p .. 'seq')
        local low, high
        if exact then
          redis.call('SET', p .. 'p:u:' .. text, gen, 'PX', rttl)
          low, high = '[' .. text .. ' ', '[' .. text .. ' \\255'
        else
          redis.call('SET', p .. 'p-all', gen, 'PX', rttl)
          low, high = '[' .. text, '[' .. text .. '\\255'
        end
        local n = 0
        for _, member in ipairs(redis.call('ZRANGEBYLEX', p .. 'urls', low, high)) do
          local e = p .. 'v2:' .. string.sub(member, -64)
          if soft then
            if redis.call('EXISTS', e) == 1 then
              redis.call('SETRANGE', e, 1, '\\1')
              n = n + 1
            end
          else
            n = n + redis.call('DEL', e)
            redis.call('ZREM', p .. 'urls', member)
            redis.call('ZREM', p .. 'expiry', member)
          end
        end
        return n
        """)
}
