-- Model kinds beyond chat and embedding (image, speech, transcription, moderation, realtime) and the price units
-- they are sold in, all list prices in integer micro-USD before our margin (docs/billing.md, "Price units"):
--   image_prices                   image: a JSON array of {"size","quality","micros"} (micro-USD per image)
--   micros_per_mchar               speech: per million input characters
--   micros_per_minute              transcription and translation: per minute of audio
--   micros_per_request             moderation: per request; null = free
--   audio_input/output_micros_per_mtok  realtime: audio tokens per million (text tokens use the input/output columns)
alter table models add column image_prices jsonb;
alter table models add column micros_per_mchar bigint;
alter table models add column micros_per_minute bigint;
alter table models add column micros_per_request bigint;
alter table models add column audio_input_micros_per_mtok bigint;
alter table models add column audio_output_micros_per_mtok bigint;

-- OpenAI's list prices (platform.openai.com/docs/pricing, checked against stored copies and price trackers on 2026-12-04): DALL·E 3 $0.040 (1024x1024 standard),
-- $0.080 (1024x1792 / 1792x1024 standard), $0.080 / $0.120 hd; gpt-image-1 low $0.011 / $0.016, medium $0.042 / $0.063,
-- high $0.167 / $0.25 (1024x1024 / 1024x1536 and 1536x1024); tts-1 $15 per 1M characters, tts-1-hd $30; whisper-1
-- $0.006 per minute; omni-moderation free; gpt-4o-realtime-preview text $5 / $20, audio $40 / $80 per 1M tokens,
-- cached text input $2.50. The echo models mirror them for local development (the echo provider answers offline).
insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                    cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at,
                    image_prices, micros_per_mchar, micros_per_minute, micros_per_request, audio_input_micros_per_mtok, audio_output_micros_per_mtok) values
  ('openai/dall-e-3', 'DALL·E 3', 'image', 'openai', 4000, 1, null, null, null, null, array['dall-e-3'], array['text','image'], true, '2026-12-04T00:00:00Z',
   '[{"size":"1024x1024","quality":"standard","micros":40000},{"size":"1024x1792","quality":"standard","micros":80000},{"size":"1792x1024","quality":"standard","micros":80000},{"size":"1024x1024","quality":"hd","micros":80000},{"size":"1024x1792","quality":"hd","micros":120000},{"size":"1792x1024","quality":"hd","micros":120000}]',
   null, null, null, null, null),
  ('openai/gpt-image-1', 'GPT Image 1', 'image', 'openai', 32000, 1, null, null, null, null, array['gpt-image-1'], array['text','image'], true, '2026-12-04T00:00:00Z',
   '[{"size":"1024x1024","quality":"low","micros":11000},{"size":"1024x1536","quality":"low","micros":16000},{"size":"1536x1024","quality":"low","micros":16000},{"size":"1024x1024","quality":"medium","micros":42000},{"size":"1024x1536","quality":"medium","micros":63000},{"size":"1536x1024","quality":"medium","micros":63000},{"size":"1024x1024","quality":"high","micros":167000},{"size":"1024x1536","quality":"high","micros":250000},{"size":"1536x1024","quality":"high","micros":250000}]',
   null, null, null, null, null),
  ('openai/tts-1', 'TTS 1', 'speech', 'openai', 4096, 1, null, null, null, null, array['tts-1'], array['text','audio'], true, '2026-12-04T00:00:00Z',
   null, 15000000, null, null, null, null),
  ('openai/whisper-1', 'Whisper', 'transcription', 'openai', 1, 1, null, null, null, null, array['whisper-1'], array['audio','text'], true, '2026-12-04T00:00:00Z',
   null, null, 6000, null, null, null),
  ('openai/omni-moderation-latest', 'Omni Moderation', 'moderation', 'openai', 32768, 1, null, null, null, null, array['omni-moderation-latest'], array['text','image'], true, '2026-12-04T00:00:00Z',
   null, null, null, null, null, null),
  ('openai/gpt-4o-realtime-preview', 'GPT-4o Realtime', 'realtime', 'openai', 128000, 4096, 5000000, 20000000, 2500000, null, array['gpt-4o-realtime-preview'], array['text','audio'], true, '2026-12-04T00:00:00Z',
   null, null, null, null, 40000000, 80000000),
  ('echo/echo-image', 'Echo Images', 'image', 'aigate', 4000, 1, null, null, null, null, array['echo-image'], array['text','image'], true, '2026-12-04T00:00:00Z',
   '[{"size":"1024x1024","quality":"standard","micros":40000},{"size":"1024x1024","quality":"hd","micros":80000}]',
   null, null, null, null, null),
  ('echo/echo-tts', 'Echo Speech', 'speech', 'aigate', 4096, 1, null, null, null, null, array['echo-tts'], array['text','audio'], true, '2026-12-04T00:00:00Z',
   null, 15000000, null, null, null, null),
  ('echo/echo-whisper', 'Echo Transcription', 'transcription', 'aigate', 1, 1, null, null, null, null, array['echo-whisper'], array['audio','text'], true, '2026-12-04T00:00:00Z',
   null, null, 6000, null, null, null),
  ('echo/echo-moderation', 'Echo Moderation', 'moderation', 'aigate', 32768, 1, null, null, null, null, array['echo-moderation'], array['text'], true, '2026-12-04T00:00:00Z',
   null, null, null, null, null, null),
  ('echo/echo-realtime', 'Echo Realtime', 'realtime', 'aigate', 32768, 4096, 5000000, 20000000, 2500000, null, array['echo-realtime'], array['text','audio'], true, '2026-12-04T00:00:00Z',
   null, null, null, null, 40000000, 80000000);

insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values
  ('openai/dall-e-3',                'openai', 'dall-e-3',                0, 1, true),
  ('openai/gpt-image-1',             'openai', 'gpt-image-1',             0, 1, true),
  ('openai/tts-1',                   'openai', 'tts-1',                   0, 1, true),
  ('openai/whisper-1',               'openai', 'whisper-1',               0, 1, true),
  ('openai/omni-moderation-latest',  'openai', 'omni-moderation-latest',  0, 1, true),
  ('openai/gpt-4o-realtime-preview', 'openai', 'gpt-4o-realtime-preview', 0, 1, true),
  ('echo/echo-image',                'echo',   'echo-image',              0, 1, true),
  ('echo/echo-tts',                  'echo',   'echo-tts',                0, 1, true),
  ('echo/echo-whisper',              'echo',   'echo-whisper',            0, 1, true),
  ('echo/echo-moderation',           'echo',   'echo-moderation',         0, 1, true),
  ('echo/echo-realtime',             'echo',   'echo-realtime',           0, 1, true);
