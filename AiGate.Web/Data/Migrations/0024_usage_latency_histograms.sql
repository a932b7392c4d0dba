-- Latency histograms on the usage rollups (Features/Usage, the Activity page): percentiles do not add up, so
-- hours and days carry the count of calls per latency bucket instead, and p50/p95 of any range and grouping
-- come from the sum of its buckets. The bucket bounds (ms) are LatencyHistogram.Bounds in C#: keep them equal.
-- Bucket i (0-based) holds latencies in [bound(i-1), bound(i)); bucket 0 those under the first bound, the last
-- bucket those at or over the last. A null histogram means a bucket's latencies are unknown (its raw events were
-- pruned before this migration), so a partial histogram never passes for a whole one.

-- One call's histogram: a one in its latency's bucket.
create function usage_latency_histogram(latency_ms integer) returns bigint[]
language sql immutable parallel safe as $$
    select array_fill(0::bigint, array[b]) || 1::bigint || array_fill(0::bigint, array[16 - b])
    from width_bucket(latency_ms, '{100,200,300,500,750,1000,1500,2000,3000,5000,7500,10000,15000,20000,30000,60000}'::integer[]) b
$$;

-- Element-wise sum; null on either side gives the other (an aggregate's first row).
create function usage_histogram_add(a bigint[], b bigint[]) returns bigint[]
language sql immutable parallel safe as $$
    select case when a is null then b when b is null then a
                else array(select x + y from unnest(a, b) with ordinality as u(x, y, i) order by i) end
$$;

create aggregate usage_histogram_sum(bigint[]) (sfunc = usage_histogram_add, stype = bigint[], parallel = safe);

alter table usage_rollups_hourly add column latency_histogram bigint[];
alter table usage_rollups_daily add column latency_histogram bigint[];

-- Backfill the hours whose raw events are all still kept, from exactly the events the rollups hold (up to the watermark).
update usage_rollups_hourly r set latency_histogram = h.histogram
from (
    select e.user_id, date_trunc('hour', e.created_at, 'UTC') as hour, e.key_id, e.model_id, e.provider,
           usage_histogram_sum(usage_latency_histogram(e.latency_ms)) as histogram
    from usage_events e
    where e.id <= (select last_event_id from usage_rollup_state where id = 1)
      and e.created_at >= (select raw_kept_from from usage_rollup_state where id = 1)
    group by 1, 2, 3, 4, 5
) h
where r.user_id = h.user_id and r.hour = h.hour and r.key_id = h.key_id and r.model_id = h.model_id and r.provider = h.provider
  and r.hour >= (select raw_kept_from from usage_rollup_state where id = 1);

-- Days: the sum of their hours, when every hour's histogram is known.
update usage_rollups_daily d set latency_histogram = h.histogram
from (
    select user_id, (hour at time zone 'UTC')::date as day, key_id, model_id, provider,
           case when count(latency_histogram) = count(*) then usage_histogram_sum(latency_histogram) end as histogram
    from usage_rollups_hourly
    group by 1, 2, 3, 4, 5
) h
where d.user_id = h.user_id and d.day = h.day and d.key_id = h.key_id and d.model_id = h.model_id and d.provider = h.provider;
