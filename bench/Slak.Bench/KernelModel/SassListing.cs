// A reader of nvdisasm's SASS listing (`nvdisasm -c file.cubin`): per kernel, its instructions (address, predicate,
// opcode, operands) and labels, and its loops: a branch to an address at or before itself closes a loop over
// [target, branch]. The innermost loops (no other loop strictly inside) are where a kernel spends its time; the hot
// loop of a kernel is the innermost loop with the most FFMAs (ties: more instructions). Only the listing's text is
// read, so the same code serves every architecture nvdisasm knows.
using System.Text.RegularExpressions;

namespace Slak.Bench.KernelModel;

/// <summary>One SASS instruction.</summary>
/// <param name="Address">Byte offset in the kernel.</param>
/// <param name="Predicate">"@P0", "@!P1", ... or "" when unpredicated.</param>
/// <param name="Opcode">Mnemonic with modifiers, e.g. "FFMA", "LDS.64", "BRA.DIV".</param>
/// <param name="Operands">Everything after the opcode.</param>
public sealed record SassInstruction(int Address, string Predicate, string Opcode, string Operands)
{
    /// <summary>The mnemonic without modifiers ("LDS" for "LDS.U.128").</summary>
    public string Base => Opcode.Split('.')[0];
}

/// <summary>A loop: the instructions from <see cref="Start"/> to <see cref="End"/> (the backward branch),
/// inclusive.</summary>
public sealed record SassLoop(int Start, int End)
{
    /// <summary>True when <paramref name="other"/> lies inside this loop and is not this loop.</summary>
    public bool StrictlyContains(SassLoop other) => other != this && Start <= other.Start && other.End <= End;
}

/// <summary>Instruction counts of a range of a kernel.</summary>
public sealed record SassMix(int Instructions, int Ffma, int SharedLoads, int GlobalLoads, int SharedStores, int GlobalStores, int Branches)
{
    /// <summary>FFMAs over all instructions (NOPs not counted).</summary>
    public double FfmaShare => Instructions == 0 ? 0 : Ffma / (double)Instructions;

    /// <summary>Shared-memory loads per FFMA (infinity when there is no FFMA).</summary>
    public double SharedLoadsPerFfma => Ffma == 0 ? double.PositiveInfinity : SharedLoads / (double)Ffma;

    /// <summary>Global loads per FFMA.</summary>
    public double GlobalLoadsPerFfma => Ffma == 0 ? double.PositiveInfinity : GlobalLoads / (double)Ffma;
}

/// <summary>One kernel of a listing.</summary>
public sealed class SassKernel
{
    internal SassKernel(string name, List<SassInstruction> instructions, Dictionary<string, int> labels)
    {
        Name = name;
        Instructions = instructions;
        Labels = labels;
        Loops = FindLoops(instructions, labels);
    }

    /// <summary>The kernel's name.</summary>
    public string Name { get; }

    /// <summary>Instructions in address order.</summary>
    public IReadOnlyList<SassInstruction> Instructions { get; }

    /// <summary>Label name -> address.</summary>
    public IReadOnlyDictionary<string, int> Labels { get; }

    /// <summary>Every loop (backward branch), outermost first by start address.</summary>
    public IReadOnlyList<SassLoop> Loops { get; }

    /// <summary>Loops that contain no other loop.</summary>
    public IEnumerable<SassLoop> InnermostLoops => Loops.Where(l => !Loops.Any(o => l.StrictlyContains(o)));

    /// <summary>The innermost loop with the most FFMAs (then the most instructions); null when no loop has an
    /// FFMA.</summary>
    public SassLoop? HotLoop => InnermostLoops
        .Select(l => (Loop: l, Mix: Mix(l)))
        .Where(p => p.Mix.Ffma > 0)
        .OrderByDescending(p => p.Mix.Ffma).ThenByDescending(p => p.Mix.Instructions)
        .Select(p => p.Loop).FirstOrDefault();

    /// <summary>The straight-line block (no label inside, no control transfer before its last instruction) with the
    /// most FFMAs (then the most instructions); null when no block has an FFMA. A fully unrolled kernel (e.g. the
    /// small-map depthwise kernel on 7 x 7 maps) has no backward branch around its FFMAs: this block is its
    /// body.</summary>
    public SassLoop? HotBlock => BasicBlocks()
        .Select(b => (Block: b, Mix: Mix(b)))
        .Where(p => p.Mix.Ffma > 0)
        .OrderByDescending(p => p.Mix.Ffma).ThenByDescending(p => p.Mix.Instructions)
        .Select(p => p.Block).FirstOrDefault();

    /// <summary>The hot loop when the kernel has one around its FFMAs, else the hot straight-line block; Loop says
    /// which.</summary>
    public (SassLoop Range, bool Loop)? HotRegion => HotLoop is { } l ? (l, true) : HotBlock is { } b ? (b, false) : null;

    /// <summary>The kernel's basic blocks: a block ends at a control transfer (BRA, EXIT, RET, CALL, BRX, JMP) or
    /// before a labelled instruction (a branch target).</summary>
    public IEnumerable<SassLoop> BasicBlocks()
    {
        var targets = new HashSet<int>(Labels.Values);
        int? start = null, last = null;
        foreach (var i in Instructions)
        {
            if (start is not null && targets.Contains(i.Address))
            {
                yield return new SassLoop(start.Value, last!.Value);
                start = null;
            }
            start ??= i.Address;
            last = i.Address;
            if (i.Base is "BRA" or "EXIT" or "RET" or "CALL" or "BRX" or "JMP" or "JMX")
            {
                yield return new SassLoop(start.Value, i.Address);
                start = null;
            }
        }
        if (start is not null) yield return new SassLoop(start.Value, last!.Value);
    }

    /// <summary>The instructions of <paramref name="loop"/> split by whether a predicated forward branch inside the
    /// loop can jump over them (a region from such a branch to its target: a live-tap test skipping a masked tap's
    /// products): issue slots and FFMAs executed every iteration (Always) and those a taken branch skips (Skippable).
    /// NOPs are not counted.</summary>
    public (int Always, int AlwaysFfma, int Skippable, int SkippableFfma) SkipMix(SassLoop loop)
    {
        var body = Instructions.Where(i => i.Address >= loop.Start && i.Address <= loop.End).ToList();
        var skippable = new HashSet<int>();
        var labels = new Dictionary<string, int>(Labels);
        foreach (var b in body)
        {
            if (b.Base != "BRA" || b.Predicate.Length == 0 || b.Opcode.Contains(".DIV", StringComparison.Ordinal)) continue;
            if (BranchTarget(b.Operands, labels) is not int t || t <= b.Address || t > loop.End + 16) continue;
            foreach (var i in body)
                if (i.Address > b.Address && i.Address < t) skippable.Add(i.Address);
        }
        int always = 0, alwaysFfma = 0, skip = 0, skipFfma = 0;
        foreach (var i in body)
        {
            if (i.Base == "NOP") continue;
            bool ffma = i.Base == "FFMA";
            if (skippable.Contains(i.Address)) { skip++; if (ffma) skipFfma++; }
            else { always++; if (ffma) alwaysFfma++; }
        }
        return (always, alwaysFfma, skip, skipFfma);
    }

    /// <summary>Counts over the whole kernel.</summary>
    public SassMix Mix() => Count(Instructions);

    /// <summary>Counts over one loop.</summary>
    public SassMix Mix(SassLoop loop) => Count(Instructions.Where(i => i.Address >= loop.Start && i.Address <= loop.End));

    private static SassMix Count(IEnumerable<SassInstruction> instructions)
    {
        int n = 0, ffma = 0, lds = 0, ldg = 0, sts = 0, stg = 0, bra = 0;
        foreach (var i in instructions)
        {
            string b = i.Base;
            if (b == "NOP") continue;
            n++;
            switch (b)
            {
                case "FFMA": ffma++; break;
                case "LDS": case "LDSM": lds++; break;
                case "LDG": case "LD": ldg++; break;
                case "STS": sts++; break;
                case "STG": case "ST": stg++; break;
                case "BRA": bra++; break;
            }
        }
        return new SassMix(n, ffma, lds, ldg, sts, stg, bra);
    }

    private static List<SassLoop> FindLoops(List<SassInstruction> instructions, Dictionary<string, int> labels)
    {
        var loops = new List<SassLoop>();
        foreach (var i in instructions)
        {
            if (i.Base != "BRA" || i.Opcode.Contains(".DIV", StringComparison.Ordinal)) continue;
            int? target = BranchTarget(i.Operands, labels);
            if (target is int t && t <= i.Address) loops.Add(new SassLoop(t, i.Address));
        }
        return [.. loops.Distinct().OrderBy(l => l.Start).ThenByDescending(l => l.End)];
    }

    private static int? BranchTarget(string operands, Dictionary<string, int> labels)
    {
        var label = Regex.Match(operands, @"`\((\.L_\w+)\)");
        if (label.Success) return labels.TryGetValue(label.Groups[1].Value, out int a) ? a : null;
        var hex = Regex.Match(operands, @"0x([0-9a-fA-F]+)");
        return hex.Success ? Convert.ToInt32(hex.Groups[1].Value, 16) : null;
    }
}

/// <summary>Parses a whole nvdisasm listing.</summary>
public static partial class SassListing
{
    [GeneratedRegex(@"^\s*\.text\.(?<name>[A-Za-z_]\w*):\s*$")]
    private static partial Regex SectionStart();

    [GeneratedRegex(@"^\s*/\*(?<addr>[0-9a-fA-F]+)\*/\s+(?<pred>@!?U?P(?:\d|T)\s+)?(?<op>[A-Z][A-Z0-9_.]*)\s*(?<rest>[^;]*);")]
    private static partial Regex InstructionLine();

    [GeneratedRegex(@"^\s*(?<label>\.L_\w+):\s*$")]
    private static partial Regex LabelLine();

    /// <summary>The kernels of <paramref name="listing"/> in order.</summary>
    public static IReadOnlyList<SassKernel> Parse(string listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var kernels = new List<SassKernel>();
        string? name = null;
        var instructions = new List<SassInstruction>();
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        var pendingLabels = new List<string>();
        void Flush()
        {
            if (name is null) return;
            // A label at the very end (after the last instruction) marks the end address.
            int end = instructions.Count == 0 ? 0 : instructions[^1].Address + 16;
            foreach (var l in pendingLabels) labels[l] = end;
            kernels.Add(new SassKernel(name, [.. instructions], new Dictionary<string, int>(labels)));
            instructions.Clear();
            labels.Clear();
            pendingLabels.Clear();
        }
        foreach (string line in listing.Split('\n'))
        {
            var s = SectionStart().Match(line);
            if (s.Success)
            {
                Flush();
                name = s.Groups["name"].Value;
                continue;
            }
            if (name is null) continue;
            var l = LabelLine().Match(line);
            if (l.Success) { pendingLabels.Add(l.Groups["label"].Value); continue; }
            var m = InstructionLine().Match(line);
            if (!m.Success) continue;
            int addr = Convert.ToInt32(m.Groups["addr"].Value, 16);
            foreach (var p in pendingLabels) labels[p] = addr;
            pendingLabels.Clear();
            instructions.Add(new SassInstruction(addr, m.Groups["pred"].Value.Trim(), m.Groups["op"].Value, m.Groups["rest"].Value.Trim()));
        }
        Flush();
        return kernels;
    }
}
