// `slak infer`: evaluation-mode logits of a checkpoint for an NCHW .npy batch (how a PyTorch user checks a
// converted checkpoint against the reference). Parsing and presentation only; the work is in Slak.Inference.
using System.CommandLine;
using Slak.Inference;

namespace Slak.Cli.Commands;

/// <summary>The infer verb.</summary>
internal sealed class InferCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 30;

    /// <inheritdoc />
    public Command Build()
    {
        var config = new Option<string>("--model-config")
        {
            Description = "config.json with the model's constructor arguments", Required = true,
        };
        var weights = new Option<string>("--weights")
        {
            Description = "safetensors checkpoint (reference state_dict names)", Required = true,
        };
        var input = new Option<string>("--input")
        {
            Description = "input .npy, float32 (N, C, H, W)", Required = true,
        };
        var output = new Option<string>("--output")
        {
            Description = "output .npy for the float32 (N, num_classes) logits", Required = true,
        };
        var device = new Option<string>("--device")
        {
            Description = "cpu, cuda, cuda:N or cuda-emu", DefaultValueFactory = _ => "cpu",
        };
        var batch = new Option<int>("--batch-size")
        {
            Description = "images per forward pass", DefaultValueFactory = _ => 32,
        };
        var precision = Slak.Cli.Training.PrecisionChoice.CreateOption();
        var cmd = new Command("infer", "Evaluation-mode logits of a checkpoint for an NCHW .npy batch");
        foreach (var o in new Option[] { config, weights, input, output, device, batch, precision }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var dev = Device.Parse(parse.GetValue(device)!);
            var arithmetic = Slak.Cli.Training.PrecisionChoice.Resolve(parse.GetValue(precision), dev);
            var options = new InferenceOptions(
                parse.GetValue(config)!, parse.GetValue(weights)!, parse.GetValue(input)!, parse.GetValue(output)!,
                dev, parse.GetValue(batch));
            Slak.Cli.Training.WeightChecks.NoteUnverified(options.WeightsPath);
            var started = System.Diagnostics.Stopwatch.StartNew();
            int[] shape;
            using (MixedPrecision.Use(arithmetic))
                shape = SlakInference.Run(options);
            int bad = Slak.IO.Npy.Read(options.OutputPath).ToFloat32().Count(v => !float.IsFinite(v));
            if (bad > 0)
                throw new InvalidDataException($"{options.WeightsPath}: {bad} of the logits written to {options.OutputPath} are not finite: "
                    + "the weights are damaged or diverged");
            Console.WriteLine($"wrote {options.OutputPath}: logits ({shape[0]}, {shape[1]}) on {options.Device} in " +
                $"{started.Elapsed.TotalSeconds:0.00} s");
            return 0;
        });
        return cmd;
    }
}
