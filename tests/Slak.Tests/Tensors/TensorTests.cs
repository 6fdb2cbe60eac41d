// Tensors on every test device: creation, shape queries and their errors, views sharing reference-counted storage
// (Reshape, SliceBatch, Detach) and when that storage is released, TensorScope ownership (Keep, Untracked, nesting).
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Tensors;

public sealed class TensorTests(string device) : DeviceTest(device)
{
    [Test]
    public void CreationAndShapeQueries()
    {
        var t = Tensor.Full([2, 3, 4], 1.25f, Dev);
        Assert.That(t.ShapeArray, Is.EqualTo(new[] { 2, 3, 4 }), Ctx("shape"));
        Assert.That((t.Rank, t.Numel, t.Size(-1), t.Size(0)), Is.EqualTo((3, 24L, 4, 2)), Ctx("rank, numel, sizes"));
        Assert.That(t.ToArray(), Is.All.EqualTo(1.25f), Ctx("Full"));
        Assert.That(Tensor.Zeros([5], Dev).ToArray(), Is.All.EqualTo(0f), Ctx("Zeros"));
        Assert.That(Tensor.Ones([5], Dev).ToArray(), Is.All.EqualTo(1f), Ctx("Ones"));
        var s = Tensor.Scalar(3.5f, Dev);
        Assert.That((s.Rank, s.Numel, s.Item()), Is.EqualTo((0, 1L, 3.5f)), Ctx("Scalar"));
        var data = Rng.NormalArray(6);
        Expect.Exactly(Tensor.FromArray(data, [2, 3], Dev).ToArray(), data, Ctx("FromArray round trip"));
        Assert.That(t.Device, Is.EqualTo(Dev), Ctx("device"));
        Assert.That(t.DType, Is.EqualTo(DType.Float32), Ctx("dtype"));
        Expect.Throws<ArgumentException>(() => Tensor.FromArray(data, [4, 2], Dev), "data", Ctx("FromArray size"), "6", "(4, 2)", "8");
        Expect.Throws<ArgumentOutOfRangeException>(() => t.Size(3), "dim", Ctx("Size out of range"), "3", "rank 3");
        var ex = Assert.Throws<InvalidOperationException>(() => t.Item(), Ctx("Item on many elements"));
        Assert.That(ex!.Message, Does.Contain("24"), Ctx("Item message names the element count"));
    }

    [Test]
    public void RandomFactoriesAreDeterministicPerGenerator()
    {
        ulong seed = (ulong)Rng.Seed;
        var a = Tensor.RandN(new SlakRandom(seed), [3, 5], Dev, mean: 1f, std: 2f).ToArray();
        var b = Tensor.RandN(new SlakRandom(seed), [3, 5], Dev, mean: 1f, std: 2f).ToArray();
        Expect.Exactly(a, b, Ctx("RandN with the same seed"));
        var u = Tensor.Uniform(new SlakRandom(seed), [1000], Dev, -2f, 3f).ToArray();
        Assert.That(u, Is.All.InRange(-2f, 3f), Ctx("Uniform range"));
    }

    [Test]
    public void ViewsShareStorageUntilTheLastReferenceIsDropped()
    {
        var data = Rng.NormalArray(24);
        var x = T(data, 4, 6);
        var storage = x.Storage;
        var reshaped = F.Reshape(x, 2, 12);
        var detached = x.Detach();
        var slice = x.SliceBatch(1, 2);
        Expect.Exactly(slice.ToArray(), data.Skip(6).Take(12).ToArray(), Ctx("SliceBatch(1, 2) rows"));
        Assert.That(slice.ShapeArray, Is.EqualTo(new[] { 2, 6 }), Ctx("slice shape"));
        foreach (var v in new[] { reshaped, detached, slice })
            Assert.That(ReferenceEquals(v.Storage, storage), Is.True, Ctx("view shares storage"));

        x.Dispose();
        x.Dispose();  // idempotent
        Assert.That(x.IsDisposed, Is.True, Ctx("disposed"));
        Assert.That(storage.IsReleased, Is.False, Ctx("views keep the storage alive"));
        Expect.Exactly(reshaped.ToArray(), data, Ctx("reshaped view readable after the base is disposed"));
        reshaped.Dispose();
        detached.Dispose();
        Assert.That(storage.IsReleased, Is.False, Ctx("the slice still holds it"));
        Expect.Exactly(slice.ToArray(), data.Skip(6).Take(12).ToArray(), Ctx("slice readable"));
        slice.Dispose();
        Assert.That(storage.IsReleased, Is.True, Ctx("released with the last view"));
        Assert.Throws<ObjectDisposedException>(() => x.ToArray(), Ctx("a disposed tensor cannot be read"));
    }

    [Test]
    public void SliceBatchRejectsOutOfRangeRows()
    {
        var x = Tensor.Zeros([3, 2], Dev);
        Expect.Throws<ArgumentOutOfRangeException>(() => x.SliceBatch(2, 2), "start", Ctx("slice past the end"), "[2, 4)", "3");
        Expect.Throws<ArgumentOutOfRangeException>(() => x.SliceBatch(-1, 1), "start", Ctx("negative start"), "-1");
        Assert.That(x.SliceBatch(3, 0).Numel, Is.EqualTo(0), Ctx("empty slice at the end"));
    }

    [Test]
    public void ReleasedStorageCannotBeRevived()
    {
        var x = Tensor.Zeros([4], Dev);
        var storage = x.Storage;
        x.Dispose();
        Assert.That(storage.IsReleased, Is.True, Ctx("released"));
        Assert.Throws<ObjectDisposedException>(() => storage.AddRef(), Ctx("AddRef after release"));
        Assert.That(storage.IsReleased, Is.True, Ctx("a failed AddRef must not make the storage look alive again"));
    }

    [Test]
    public void TensorScopeDisposesWhatItTrackedExceptKeptAndUntracked()
    {
        var before = T([1f, 2f], 2);
        Tensor inner, kept, untracked, outerOwned;
        using (var outer = TensorScope.Begin())
        {
            outerOwned = T([3f], 1);
            using (var scope = TensorScope.Begin())
            {
                inner = F.Scale(before, 2f);
                kept = scope.Keep(F.Scale(before, 3f));
                using (TensorScope.Untracked()) untracked = T([4f], 1);
                Assert.That(scope.Count, Is.EqualTo(1), Ctx("one tensor to dispose"));
            }
            Assert.That(inner.IsDisposed, Is.True, Ctx("tracked temporary disposed"));
            Assert.That(kept.IsDisposed, Is.False, Ctx("kept tensor survives the inner scope"));
            Assert.That(untracked.IsDisposed, Is.False, Ctx("untracked tensor survives"));
            Assert.That(before.IsDisposed, Is.False, Ctx("tensor created before the scope survives"));
        }
        Assert.That(kept.IsDisposed, Is.True, Ctx("kept tensor is handed to the outer scope, which disposes it"));
        Assert.That(outerOwned.IsDisposed, Is.True, Ctx("outer scope disposes its own"));
        Assert.That(untracked.IsDisposed || before.IsDisposed, Is.False, Ctx("untracked and pre-scope tensors never disposed"));
    }

    [Test]
    public void KeepingATensorTheScopeDoesNotOwnDoesNotHandItToTheOuterScope()
    {
        var parameter = T([1f, 2f], 2);   // created outside any scope: owned by the caller
        using (TensorScope.Begin())
        {
            using var inner = TensorScope.Begin();
            inner.Keep(parameter);
        }
        Assert.That(parameter.IsDisposed, Is.False, Ctx("Keep on a tensor the scope never tracked must not make an outer scope dispose it"));
    }

    [Test]
    public void TensorScopesMustCloseInOrder()
    {
        var outer = TensorScope.Begin();
        var owned = T([2f], 1);   // tracked by outer
        var inner = TensorScope.Begin();
        var ex = Assert.Throws<InvalidOperationException>(() => outer.Dispose(), Ctx("closing the outer scope first"));
        Assert.That(ex!.Message, Does.Contain("out of order"), Ctx("message"));
        var t = T([1f], 1);   // tracked by inner
        inner.Dispose();
        Assert.That(t.IsDisposed, Is.True, Ctx("inner scope disposed its tensor"));
        outer.Dispose();   // now in order: must close for real, so this thread has no open scope left
        Assert.That(owned.IsDisposed, Is.True, Ctx("closing the outer scope in order after a refused attempt disposes its tensors"));
        var after = T([1f], 1);
        using (var probe = TensorScope.Begin()) Assert.That(probe.Count, Is.EqualTo(0), Ctx("fresh scope after recovery"));
        Assert.That(after.IsDisposed, Is.False, Ctx("no stale scope still tracks new tensors"));
    }
}
