# One customer managed key for data at rest that holds events: the Kinesis
# streams, the SQS queues and the lake. Without an explicit key policy AWS
# applies the default one (the account's IAM policies decide), so each
# role below names the key operations it needs and nothing else.
resource "aws_kms_key" "data" {
  description             = "${var.name}: events at rest (Kinesis, SQS, S3 lake)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name}-data"
  target_key_id = aws_kms_key.data.key_id
}
