"""The request path: Recommend, Feedback and GetModelInfo, whatever the wire format."""
