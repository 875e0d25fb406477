"""The feedback loop: surveys sent at the right moment with signed answer links, their
answers, and tasks that make someone follow up every unhappy customer."""
