"""pages.place: the tables copied onto huge pages hold the same bits, and the run says what happened."""
import jax
import numpy as np
import pytest

from w2v_jax import models, native, pages


def _tables(V=20_000, D=100):   # 8 MB each: four 2 MB pages
  return models.init(jax.random.PRNGKey(0), V, D)


def test_placed_tables_hold_the_same_bits_and_the_line_says_where_they_are():
  state = _tables()
  before = [np.asarray(x).copy() for x in state]
  old = list(state)
  placed, line = pages.place(state, enabled=True)
  assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, placed))
  assert type(placed) is type(state)
  mode = pages.thp_mode()
  if mode == "madvise" and native.available():
    assert all(x.is_deleted() for x in old)   # copied, and the old buffers freed at once
    on = pages.huge_bytes(list(placed))
    assert on > 0 and f"{on / 2**20:,.0f} of 15 MB of tables on 2 MB pages" in line, line
  elif mode in (None, "never"):
    assert "on 4 kB pages" in line and placed is state
  # The measurement is of the buffers themselves: tables XLA made in the ordinary way are on 4 kB pages
  # here unless THP is "always".
  if mode == "madvise":
    assert pages.huge_bytes(list(_tables())) == 0


def test_small_tables_forced_off_and_auto_below_its_size_are_left_as_they_are():
  state = _tables(2_000, 16)
  if pages.thp_mode() not in (None, "never"):
    placed, line = pages.place(state, enabled=True)
    assert placed is state and "no table fills a 2 MB page" in line
  state = _tables()
  placed, line = pages.place(state, enabled=False)
  assert placed is state and line == "15 MB of tables on 4 kB pages (--nohuge_pages)"
  placed, line = pages.place(state)   # auto: 15 MB is below AUTO_MIN_BYTES
  assert placed is state and line == ("15 MB of tables on 4 kB pages (auto: huge pages from 512 MB of tables; "
                                      "--huge_pages forces them)")


def test_auto_places_tables_of_its_size_and_says_it_was_auto(monkeypatch):
  """The default (enabled=None) is the forced copy for tables of at least AUTO_MIN_BYTES (512 MB; lowered
  here to 8 MB so that the test's 15 MB of tables qualify), and its line says that auto chose it."""
  monkeypatch.setattr(pages, "AUTO_MIN_BYTES", 8 << 20)
  state = _tables()
  before = [np.asarray(x).copy() for x in state]
  placed, line = pages.place(state)
  assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, placed))
  assert line.endswith("; auto, for 8 MB of tables or more (--nohuge_pages: 4 kB pages)"), line
  if pages.thp_mode() == "madvise" and native.available():
    assert pages.huge_bytes(list(placed)) > 0 and "of 15 MB of tables on 2 MB pages" in line, line


@pytest.mark.skipif(not native.available(), reason=native.status().reason)
def test_the_copy_kernel_copies_any_buffer_and_counts_the_pages_it_advised():
  x = jax.numpy.arange(3 << 20, dtype=jax.numpy.float32).reshape(-1, 3)   # 12 MB
  y, advised = native.huge_page_copy(x, 2 << 20)
  assert np.array_equal(np.asarray(x), np.asarray(y))
  assert int(advised) in (5, 6) if pages.thp_mode() is not None else int(advised) >= 0   # whole 2 MB pages inside


def test_tables_made_on_huge_pages_are_models_inits_and_leave_nothing_to_copy(monkeypatch):
  """init_params makes the tables where place() would put them (native zeros in advised memory, W_in drawn
  into its zeros in place): the same values as models.init, and place() then copies nothing."""
  # 40 MB tables: above glibc's largest dynamic mmap threshold (32 MB), so each is a fresh mapping, as the
  # tables auto places are (at 8 MB, after other tests freed such buffers, malloc reused touched memory)
  monkeypatch.setattr(pages, "AUTO_MIN_BYTES", 8 << 20)
  key = jax.random.PRNGKey(3)
  made = pages.init_params(key, 100_000, 100)
  plain = models.init(key, 100_000, 100)
  assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(made, plain))
  assert not np.array_equal(np.asarray(made.W_in), np.asarray(models.init(jax.random.PRNGKey(4), 100_000, 100).W_in))
  if pages.thp_mode() == "madvise" and native.available():
    assert pages.huge_bytes([made.W_in]) > 0 and pages.huge_bytes([made.W_out]) > 0   # W_in drawn in place
    placed, line = pages.place(made)
    assert "made there, none copied" in line and placed.W_in is made.W_in, line
  def no_zeros(*args, **kwargs):
    raise AssertionError("huge-page zeros made for tables below auto's size")
  monkeypatch.setattr(native, "huge_page_zeros", no_zeros)
  small = pages.init_params(key, 2_000, 16)   # below auto's size: plain models.init
  assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(small, models.init(key, 2_000, 16)))
  with pytest.raises(ValueError, match="needs zero .20000, 100. and .20000, 100. float32 tables"):
    models.init(key, 20_000, 100, into=models.Params(plain.W_in, plain.W_out[:10]))


@pytest.mark.skipif(not native.available(), reason=native.status().reason)
def test_the_zeros_kernel_writes_zeros_and_counts_the_pages_it_advised():
  z, advised = native.huge_page_zeros((3 << 20, 3), jax.numpy.float32, 2 << 20)   # 36 MB
  assert z.shape == (3 << 20, 3) and not np.asarray(z).any()
  assert int(advised) >= 17 if pages.thp_mode() is not None else int(advised) >= 0   # whole 2 MB pages inside
