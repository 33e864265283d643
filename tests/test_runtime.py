"""jgen.runtime: the process settings run.py and the benches apply."""

from jgen import runtime


def test_cpu_defaults_fill_in_what_the_user_has_not_set():
  env = {}
  runtime.set_cpu_defaults(env)
  assert env == {'OPENBLAS_NUM_THREADS': '1',
                 'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type='}
  env = {'OPENBLAS_NUM_THREADS': '2', 'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
  runtime.set_cpu_defaults(env)
  assert env == {'OPENBLAS_NUM_THREADS': '2',
                 'XLA_FLAGS': '--xla_force_host_platform_device_count=4 '
                              '--xla_cpu_experimental_ynn_fusion_type='}


def test_cpu_defaults_keep_the_users_own_value_of_a_flag():
  env = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'}
  runtime.set_cpu_defaults(env)
  assert env['XLA_FLAGS'] == '--xla_cpu_experimental_ynn_fusion_type=dot'
