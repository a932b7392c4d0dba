using AiGate.Web.Features.Gateway;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// One attempt's cancellation source (issue 16: one object where a linked source and a second deadline source were): the
/// client leaving and the deadline both cancel the attempt, and a whole answer's body is then read within the deadline
/// whether or not the client is still there (the provider generated it and bills it).
/// </summary>
public sealed class AttemptLifetimeTests
{
    [Fact]
    public void The_client_leaving_cancels_the_attempt()
    {
        using var client = new CancellationTokenSource();
        using var lifetime = new AttemptLifetime(client.Token, TimeSpan.FromMinutes(1));
        Assert.False(lifetime.IsCancellationRequested);
        client.Cancel();
        Assert.True(lifetime.IsCancellationRequested);
    }

    [Fact]
    public async Task The_deadline_cancels_the_attempt()
    {
        using var lifetime = new AttemptLifetime(CancellationToken.None, TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Delay(TimeSpan.FromSeconds(30), lifetime.Token));
    }

    [Fact]
    public void A_whole_body_is_read_after_the_client_left_while_it_was_read()
    {
        using var client = new CancellationTokenSource();
        var lifetime = new AttemptLifetime(client.Token, TimeSpan.FromMinutes(1));
        var body = lifetime.ForWholeBody();
        Assert.Same(lifetime, body);
        client.Cancel();
        Assert.False(body.IsCancellationRequested);
        body.Dispose();
    }

    [Fact]
    public async Task A_whole_body_is_read_after_the_client_left_before_it_was_read_within_what_remains_of_the_deadline()
    {
        using var client = new CancellationTokenSource();
        var lifetime = new AttemptLifetime(client.Token, TimeSpan.FromMilliseconds(400));
        client.Cancel();
        Assert.True(lifetime.IsCancellationRequested);

        using var body = lifetime.ForWholeBody();
        Assert.NotSame(lifetime, body);
        Assert.False(body.IsCancellationRequested);
        // The rest of the attempt's deadline still bounds the read: not a new full deadline, not none.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Delay(TimeSpan.FromSeconds(30), body.Token));
    }

    [Fact]
    public void A_body_whose_deadline_passed_while_the_client_left_is_not_read()
    {
        using var client = new CancellationTokenSource();
        var lifetime = new AttemptLifetime(client.Token, TimeSpan.FromMilliseconds(1));
        Thread.Sleep(20);
        client.Cancel();
        using var body = lifetime.ForWholeBody();
        Assert.True(body.IsCancellationRequested);
    }
}
