"""Keras's non-recurrent layers on (batch, time, features): shapes and values as Keras defines them."""
import pytest
import torch

from rnnkit.keras import layers as L


@pytest.mark.parametrize("padding,strides,dilation,T_out", [
    ("valid", 1, 1, 5), ("valid", 2, 1, 3), ("same", 1, 1, 7), ("same", 2, 1, 4), ("causal", 1, 2, 7),
    ("valid", 1, 2, 3)])
def test_conv1d_output_lengths_follow_keras(padding, strides, dilation, T_out):
    conv = L.Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation)
    assert conv(torch.randn(2, 7, 5)).shape == (2, T_out, 4)


def test_conv1d_computes_a_correlation_and_causal_sees_only_the_past():
    torch.manual_seed(0)
    conv = L.Conv1D(2, 3, input_shape=(None, 4), activation="relu")
    x = torch.randn(1, 6, 4)
    by_hand = torch.stack([torch.relu(torch.einsum("fck,kc->f", conv.weight, x[0, t:t + 3]) + conv.bias)
                           for t in range(4)])
    torch.testing.assert_close(conv(x)[0], by_hand)
    causal = L.Conv1D(2, 3, padding="causal")
    y = causal(x)
    x2 = x.clone()
    x2[:, 4:] += 1.0   # a change at step 4 cannot reach steps before it
    torch.testing.assert_close(causal(x2)[:, :4], y[:, :4])


@pytest.mark.parametrize("pool,strides,padding,T_out", [(2, None, "valid", 3), (3, None, "valid", 2),
                                                          (2, None, "same", 4), (3, 1, "valid", 5)])
def test_max_pooling_lengths_and_values(pool, strides, padding, T_out):
    x = torch.randn(2, 7, 3)
    y = L.MaxPooling1D(pool, strides, padding)(x)
    assert y.shape == (2, T_out, 3)
    if padding == "valid":
        s = strides or pool
        torch.testing.assert_close(y[:, 0], x[:, :pool].amax(1))
        torch.testing.assert_close(y[:, 1], x[:, s:s + pool].amax(1))


def test_dropout_layers_in_training_only():
    x = torch.ones(4, 5, 6)
    drop = L.SpatialDropout1D(0.5)
    y = drop(x)
    assert torch.all((y == 0).all(1) | (y == 2).all(1))   # whole channels, every step alike
    assert torch.equal(drop.eval()(x), x)
    y = L.Dropout(0.5, noise_shape=(None, 1, None))(x)
    assert torch.all((y == y[:, :1]))
    y = L.Dropout(0.5)(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}


def test_repeat_vector_time_distributed_flatten_activation_masking():
    x = torch.randn(3, 4)
    assert torch.equal(L.RepeatVector(5)(x), x[:, None].expand(3, 5, 4))
    dense = L.Dense(2, input_shape=(4,))
    seq = torch.randn(3, 5, 4)
    td = L.TimeDistributed(dense)
    torch.testing.assert_close(td(seq), torch.stack([dense(seq[:, t]) for t in range(5)], 1))
    assert L.Flatten()(seq).shape == (3, 20)
    torch.testing.assert_close(L.Activation("softmax")(seq).sum(-1), torch.ones(3, 5))
    seq[1, 2] = 0.0
    masking = L.Masking(0.0)
    assert masking.compute_mask(seq).tolist()[1] == [True, True, False, True, True]
    seq[0, 0] = 7.0
    assert L.Masking(7.0)(seq)[0, 0].abs().sum() == 0


def test_keras_layer_arguments_are_checked_at_construction():
    with pytest.raises(TypeError, match="unknown keyword argument 'pool'"):
        L.MaxPooling1D(pool=2)
    with pytest.raises(TypeError, match="keepdims"):
        L.GlobalMaxPooling1D(keepdims=True)   # refused, never silently ignored
    with pytest.raises(ValueError, match="padding"):
        L.Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.5)
    with pytest.raises(ValueError, match="Input needs shape"):
        L.Input(shape=(0, 3))
