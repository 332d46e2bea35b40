"""The Processing algorithms name the built-in remaps (LoveDA, Dubai, FLAIR) where the user types one."""

from __future__ import annotations


def test_every_remap_parameter_names_the_builtin_tables(provider):
    from changeanywhere_qgis.engine.landcover import builtin_remaps

    described = {alg.id(): alg.parameterDefinition("REMAP").description() for alg in provider.algorithms()
                 if alg.parameterDefinition("REMAP") is not None}
    assert len(described) == 4  # generate, simulate, dataset, adapt
    for alg, text in described.items():
        assert all(name in text for name in builtin_remaps()), (alg, text)
