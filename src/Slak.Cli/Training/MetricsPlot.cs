// The run's PNG plot (ScottPlot 5): train, validation and test loss on the left axis, validation and test top-1 (and
// EMA validation top-1) and weight density in percent on the right, by epoch. Test points appear only for the epochs
// where the test set was scored (the last one, or every one with --eval-test-every-epoch). Lives in the CLI so the
// library stays free of plotting packages.
using ScottPlot;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Writes the metrics plot of a run.</summary>
internal static class MetricsPlot
{
    /// <summary>Renders <paramref name="metrics"/> to <paramref name="path"/> (PNG); returns an error message
    /// instead of throwing, because a plot must never stop a training run.</summary>
    public static string? TryWrite(IReadOnlyList<EpochMetrics> metrics, string path)
    {
        if (metrics.Count == 0) return null;
        try
        {
            var plot = new Plot();
            double[] x = metrics.Select(m => (double)m.Epoch).ToArray();
            var train = plot.Add.Scatter(x, metrics.Select(m => m.TrainLoss).ToArray());
            train.LegendText = "train loss";
            var valLoss = plot.Add.Scatter(x, metrics.Select(m => m.ValLoss).ToArray());
            valLoss.LegendText = "val loss";
            var valTop1 = plot.Add.Scatter(x, metrics.Select(m => m.ValTop1).ToArray());
            valTop1.LegendText = "val top-1 (%)";
            valTop1.Axes.YAxis = plot.Axes.Right;
            var tested = metrics.Where(m => m.TestTop1 is not null).ToList();
            if (tested.Count > 0)
            {
                double[] tx = tested.Select(m => (double)m.Epoch).ToArray();
                var testLoss = plot.Add.Scatter(tx, tested.Select(m => m.TestLoss ?? double.NaN).ToArray());
                testLoss.LegendText = "test loss";
                testLoss.LinePattern = LinePattern.Dashed;
                testLoss.MarkerShape = MarkerShape.OpenSquare;
                var testTop1 = plot.Add.Scatter(tx, tested.Select(m => m.TestTop1!.Value).ToArray());
                testTop1.LegendText = "test top-1 (%)";
                testTop1.LinePattern = LinePattern.Dashed;
                testTop1.MarkerShape = MarkerShape.OpenSquare;
                testTop1.Axes.YAxis = plot.Axes.Right;
            }
            if (metrics.All(m => m.EmaTop1 is not null))
            {
                var ema = plot.Add.Scatter(x, metrics.Select(m => m.EmaTop1!.Value).ToArray());
                ema.LegendText = "EMA val top-1 (%)";
                ema.Axes.YAxis = plot.Axes.Right;
            }
            var density = plot.Add.Scatter(x, metrics.Select(m => 100 * m.Density).ToArray());
            density.LegendText = "density (%)";
            density.Axes.YAxis = plot.Axes.Right;
            plot.Title("Slak training");
            plot.XLabel("epoch");
            plot.YLabel("loss");
            plot.Axes.Right.Label.Text = "accuracy / density (%)";
            plot.Axes.SetLimitsY(0, 100, plot.Axes.Right);
            plot.ShowLegend(Alignment.MiddleRight);
            plot.SavePng(path, 900, 540);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"could not write the plot {path}: {e.GetType().Name}: {e.Message}";
        }
    }
}
