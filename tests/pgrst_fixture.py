"""A chat-and-catalogue schema for the PostgREST compatibility tests, created under a given schema name.

In:  the schema name a test module exposes.
Out: ``schema_sql(name)``: DDL and seed rows, and ``drop_sql(name)``.

The kind of data PostgREST's client libraries are exercised on: users keyed by username with a
status enum, channels and messages (two foreign keys into users, one into channels), a
self-referencing ``collections`` tree, an org chart with a one-to-one self reference, a
``best_friends`` table with three foreign keys to the same table, views over joined tables (and a
view over a view), computed fields and computed relationships, overloaded functions, functions
with an unnamed parameter, a trigger function, and RLS on ``messages``.
"""

from __future__ import annotations

SCHEMA_SQL = """
drop schema if exists {s} cascade; create schema {s}; set search_path = {s};
create type user_status as enum ('ONLINE', 'OFFLINE');
create table users(username text primary key, email text, status user_status default 'ONLINE',
  age_range int4range, catchphrase text, created_at timestamptz default '2024-01-02 03:04:05+00');
insert into users(username, email, status, catchphrase) values
  ('supabot', 'bot@example.com', 'ONLINE', 'fat cat'),
  ('kiwicopple', 'kiwi@example.com', 'OFFLINE', 'cat bat'),
  ('awailas', null, 'ONLINE', null),
  ('dragarcia', 'dra@example.com', 'ONLINE', 'fat rat');
create table channels(id int primary key, slug text unique);
insert into channels values (1, 'public'), (2, 'random'), (3, 'empty');
create table messages(id int primary key, message text, amount numeric default 0,
  channel_id int not null references channels(id),
  username text not null references users(username),
  reviewer text constraint messages_reviewer_fkey references users(username));
insert into messages values
  (1, 'Hello World', 10, 1, 'supabot', 'kiwicopple'),
  (2, 'Perfection is attained', 20, 2, 'supabot', null),
  (3, 'Supabase launch week', 5, 1, 'kiwicopple', 'supabot'),
  (4, 'Nothing to add', null, 1, 'awailas', null);
create table channel_members(channel_slug text references channels(slug), member text references users(username),
  primary key (channel_slug, member));
insert into channel_members values ('public', 'supabot'), ('public', 'kiwicopple'), ('random', 'awailas'),
  ('random', 'supabot');
create table collections(id int primary key, description text,
  parent_id int constraint collections_parent_id_fkey references collections(id));
insert into collections values (1, 'root', null), (2, 'child a', 1), (3, 'child b', 1), (4, 'grandchild', 2);
create table employees(id int primary key, name text,
  successor_of int unique constraint employees_successor_of_fkey references employees(id));
insert into employees values (1, 'First', null), (2, 'Second', 1), (3, 'Third', 2);
create table best_friends(id int primary key,
  first_user text constraint best_friends_first_user_fkey references users(username),
  second_user text constraint best_friends_second_user_fkey references users(username),
  third_user text constraint best_friends_third_user_fkey references users(username));
insert into best_friends values (1, 'supabot', 'kiwicopple', 'awailas'), (2, 'supabot', 'dragarcia', null);
-- views over joined tables, and a view over a view
create view recent_messages as
  select m.id, m.message, m.username, m.channel_id, c.slug from messages m join channels c on c.id = m.channel_id
  where m.id > 1;
create view active_users as select username, email from users where status = 'ONLINE';
create view recent_public as select id, message, username from recent_messages where channel_id = 1;
-- computed fields and computed relationships
create function blurb_message(messages) returns text language sql stable as
  $$ select substring($1.message from 1 for 3) $$;
create function get_messages(channels) returns setof messages language sql stable rows 10 as
  $$ select * from messages where channel_id = $1.id order by id $$;
create function top_message(channels) returns messages language sql stable as
  $$ select * from messages where channel_id = $1.id order by amount desc nulls last limit 1 $$;
create function author(messages) returns setof users language sql stable rows 1 as
  $$ select * from users where username = $1.username $$;
-- overloads and unnamed parameters
create function describe(n int) returns text language sql immutable as $$ select 'int ' || n $$;
create function describe(n text) returns text language sql immutable as $$ select 'text ' || n $$;
create function describe(n int, extra text) returns text language sql immutable as
  $$ select 'int ' || n || ' ' || extra $$;
create function describe_twice(a int) returns text language sql immutable as $$ select 'one' $$;
create function describe_twice(a int, b int default 0) returns text language sql immutable as $$ select 'two' $$;
create function ambiguous(x int) returns text language sql immutable as $$ select 'int' $$;
create function ambiguous(x bigint) returns text language sql immutable as $$ select 'bigint' $$;
create function double_it(int) returns int language sql immutable as $$ select $1 * 2 $$;
create function echo_doc(json) returns json language sql immutable as $$ select $1 $$;
create function bump_amounts(by_amount numeric) returns setof messages language sql volatile as
  $$ update messages set amount = amount + by_amount where amount is not null returning * $$;
create function bump_count(by_amount numeric) returns int language sql volatile as
  $$ with u as (update messages set amount = amount + by_amount returning 1) select count(*)::int from u $$;
create function now_text() returns text language sql stable as $$ select now()::text $$;
create function current_zone() returns text language sql stable as $$ select current_setting('TimeZone') $$;
create function touch() returns trigger language plpgsql as $$ begin return new; end $$;
-- row level security: a user sees only the messages they wrote
create table notes(id int primary key, owner uuid, body text);
alter table notes enable row level security;
create policy own_notes on notes using (owner = auth.uid());
grant usage on schema {s} to anon, authenticated, project_admin;
grant select on all tables in schema {s} to anon, authenticated, project_admin;
grant insert, update, delete on all tables in schema {s} to authenticated, project_admin;
grant execute on all functions in schema {s} to anon, authenticated, project_admin;
"""


def schema_sql(name: str) -> str:
    return SCHEMA_SQL.format(s=name)


def drop_sql(name: str) -> str:
    return f"drop schema if exists {name} cascade"
